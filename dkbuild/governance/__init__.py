"""Governance: lint rules, policies, classification and PII propagation, report renderers."""

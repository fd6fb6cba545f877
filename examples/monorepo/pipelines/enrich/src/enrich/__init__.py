"""The `enrich` transform: clickstream events joined to CRM customers."""

__version__ = "1.2.0"

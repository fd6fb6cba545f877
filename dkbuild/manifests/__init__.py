"""Manifests: pydantic models of the five DataKit kinds, YAML loading with positions, layouts."""

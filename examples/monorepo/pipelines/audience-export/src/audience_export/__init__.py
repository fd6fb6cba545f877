"""The `audience-export` transform: hashed audience files for ad platforms."""

__version__ = "0.4.0"

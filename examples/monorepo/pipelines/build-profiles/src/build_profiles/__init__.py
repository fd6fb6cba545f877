"""The `build-profiles` transform: one engagement profile per customer."""

__version__ = "0.6.2"

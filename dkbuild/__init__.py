"""dkbuild: a declarative, content-addressed build system for DataKit monorepos."""

__version__ = "0.1.0"

"""Built-in dkb rules, one module per DataKit runtime (registered as `dkbuild.rules` entry points)."""

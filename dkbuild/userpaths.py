"""Where personal settings come from (the user config file and environment variables), without
the configuration schema: a warm command asks whether there are any before paying for pydantic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

USER_DIR = "dkb"
USER_FILE = "config.toml"

ENV_KEYS: dict[str, str] = {
    "DKB_REGISTRY": "registry.url",
    "DKB_REGISTRY_TIMEOUT": "registry.timeout",
    "DKB_REGISTRY_RETRIES": "registry.retries",
    "DKB_REGISTRY_GIVE_UP_AFTER": "registry.give_up_after",
    "DKB_REGISTRY_MAX_FAILURES": "registry.max_failures",
    "DKB_REMOTE_CACHE": "cache.remote",
    "OPENLINEAGE_URL": "lineage.url",
}


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME")
    if not base:
        home = env.get("HOME")
        base = str(Path(home) / ".config") if home else str(Path.home() / ".config")
    return Path(base) / USER_DIR / USER_FILE


def has_personal_settings(env: Mapping[str, str] | None = None) -> bool:
    """Whether anything but workspace.toml could change the effective configuration: a user config
    file or one of ENV_KEYS. When not, it is the workspace's own configuration."""
    env = os.environ if env is None else env
    return any(env.get(name) for name in ENV_KEYS) or user_config_path(env).exists()

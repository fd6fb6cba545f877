"""What dk's own validator (sdk/validate/manifest.go) accepts, check for check.

dkb checks some values more strictly than dk does. When dkb's check fails but dk's passes, dk
would lint the package clean, so the finding is marked `dk_accepts` and reported as advisory
(governance.severity). These functions copy dk's quirks on purpose; do not "fix" them.
"""

from __future__ import annotations

from typing import Any

_RANGE_STARTS = "0123456789^~><="


def semver(value: str) -> bool:
    """dk's isSemVerValid: digits and dots up to the first '-' or '+', at least two dots, a
    non-empty last group (so `1.2.3.4` and `01.0.0` pass, `v1.0.0` and `1.0` fail)."""
    parts = digits = 0
    for char in value:
        if char.isascii() and char.isdigit():
            digits += 1
        elif char == ".":
            if digits == 0:
                return False
            parts += 1
            digits = 0
        elif char in "-+":
            break
        else:
            return False
    return parts >= 2 and digits > 0


def duration(value: Any) -> bool:
    """dk's isValidDuration: only digits and h/m/s, not starting with a unit (`30`, `0s`, `1hh` pass)."""
    text = str(value)
    if not text:
        return False
    for i, char in enumerate(text):
        if char.isascii() and char.isdigit():
            continue
        if char in "hms" and i > 0:
            continue
        return False
    return True


def semver_range(value: str) -> bool:
    """dk checks only the first character of spec.connectorVersion."""
    return bool(value) and value[0] in _RANGE_STARTS


def schema_ref(value: str) -> bool:
    """dk's isSchemaRefValid: module of [a-z0-9-] with no hyphen first or last, optional non-empty
    @constraint (anything after the first '@')."""
    module, at, constraint = value.partition("@")
    if at and not constraint:
        return False
    if not module:
        return False
    return all(c.isascii() and (c.islower() or c.isdigit() or (c == "-" and 0 < i < len(module) - 1))
               for i, c in enumerate(module))

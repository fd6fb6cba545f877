"""Value syntax shared by lint rules: DNS-safe names, SemVer and ranges, schema module refs,
durations, cron expressions, and the hints that explain each one. Pure functions on strings."""

from __future__ import annotations

import difflib
import re
from typing import Any, Sequence

# --------------------------------------------------------------------------------------------
# Format checks (pure functions on strings; also used by the property tests).
# --------------------------------------------------------------------------------------------

_DNS_SAFE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def is_dns_safe(value: str) -> bool:
    """dk lint's name rule: 1-63 chars of [a-z0-9-], no hyphen first or last (a digit may lead)."""
    return isinstance(value, str) and _DNS_SAFE.fullmatch(value) is not None


_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_QUALIFIER = rf"(?:-{_PRE_ID}(?:\.{_PRE_ID})*)?(?:\+{_BUILD_ID}(?:\.{_BUILD_ID})*)?"
_SEMVER = re.compile(rf"{_NUM}\.{_NUM}\.{_NUM}{_QUALIFIER}")


def is_semver(value: str) -> bool:
    """Strict SemVer 2.0.0: MAJOR.MINOR.PATCH[-prerelease][+build], no leading zeros, no 'v'."""
    return isinstance(value, str) and _SEMVER.fullmatch(value) is not None


# One "partial" version as used in ranges: 1, 1.2, 1.2.3, 1.x, 1.2.*, *, 1.2.3-rc.1.
_X = r"(?:[xX*])"
_PARTIAL = re.compile(rf"(?P<parts>(?:{_NUM}|{_X})(?:\.(?:{_NUM}|{_X})){{0,2}})(?P<qual>{_QUALIFIER})")
_OPERATOR = re.compile(r"(?:~>|>=|<=|[~^<>=])")


def _is_partial(text: str) -> bool:
    match = _PARTIAL.fullmatch(text)
    if not match:
        return False
    parts = match.group("parts").split(".")
    wild = [p in ("x", "X", "*") for p in parts]
    if any(wild[i] and not wild[i + 1] for i in range(len(wild) - 1)):
        return False          # 1.x.3: a number after a wildcard means nothing
    if match.group("qual") and (len(parts) < 3 or any(wild)):
        return False          # a prerelease/build needs a complete version
    return True


def _is_comparator(token: str) -> bool:
    op = _OPERATOR.match(token)
    rest = token[op.end():] if op else token
    return _is_partial(rest)


def is_semver_range(value: str) -> bool:
    """A node-semver style range: comparators separated by spaces, alternatives by `||`.

    Accepts `^1.2.0`, `~1.2`, `>=1.0.0 <2.0.0`, `1.x`, `1.2.*`, `*`, `=1.0.0`, `1.0.0 - 2.0.0`,
    `^1.0.0 || ^2.0.0`; rejects `abc`, `>=`, `^^1`, `v1.0.0` and empty alternatives.
    """
    if not isinstance(value, str) or not value.strip():
        return False
    for alternative in value.split("||"):
        # ">= 1.0.0" is the same comparator as ">=1.0.0".
        text = re.sub(r"(~>|>=|<=|[~^<>=])\s+", r"\1", alternative.strip())
        tokens = text.split()
        if not tokens:
            return False
        if len(tokens) == 3 and tokens[1] == "-":
            if not (_is_partial(tokens[0]) and _is_partial(tokens[2])):
                return False
            continue
        if not all(_is_comparator(t) for t in tokens):
            return False
    return True


MODULE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_schema_module_ref(value: str) -> bool:
    """`module` or `module@constraint`: module is lowercase alnum with inner hyphens."""
    if not isinstance(value, str):
        return False
    module, at, constraint = value.partition("@")
    if not MODULE.fullmatch(module):
        return False
    if at and (not constraint.strip() or "@" in constraint):
        return False
    return True


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([hms])")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: Any) -> float | None:
    """Seconds of a Go-style duration built from number+unit parts (units h, m, s), e.g. `1h30m`.

    Returns None for anything else: a bare number (`30`), other units (`1d`, `500ms`), signs,
    spaces, or a non-string. Zero is returned as 0.0 (callers decide whether it is allowed).
    """
    if not isinstance(value, str) or not value:
        return None
    total = 0.0
    pos = 0
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if not match:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total


# Go's time.ParseDuration: [-+]?(number unit)+ with units ns us µs μs ms s m h, or a bare "0".
_GO_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(value: str) -> float | None:
    """Seconds of `value` read as Go's time.ParseDuration does (dk's `--timeout` flag): `30m`,
    `1h30m`, `90s`, `500ms`, `1.5h`, `-1m`, `0`. None when Go would reject it (`30`, `1d`, `m`)."""
    if not isinstance(value, str) or not value:
        return None
    text = value
    sign = -1.0 if text[0] == "-" else 1.0
    if text[0] in "+-":
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        return None
    total, pos = 0.0, 0
    while pos < len(text):
        match = _GO_DURATION_PART.match(text, pos)
        if not match or match.group(1) in ("", "."):
            return None
        total += float(match.group(1)) * _GO_UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return sign * total


_CRON_MACROS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually")
_MONTHS = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (field name, low, high, names)
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


def cron_problem(expr: str) -> str | None:
    """None when `expr` is a valid 5-field cron expression (or a macro), else what is wrong.

    Each field is a comma-separated list of `*`, `N`, `A-B`, `*/S` or `A-B/S`; months may be
    written JAN-DEC and week days SUN-SAT (any case).
    """
    if not isinstance(expr, str) or not expr.strip():
        return "the cron expression is empty"
    text = expr.strip()
    if text.startswith("@"):
        if text.lower() in _CRON_MACROS:
            return None
        return f"unknown cron macro '{text}'; use one of {', '.join(_CRON_MACROS)}"
    fields = text.split()
    if len(fields) != 5:
        extra = " (seconds and years are not supported)" if len(fields) in (6, 7) else ""
        return (f"expected 5 fields (minute hour day-of-month month day-of-week), "
                f"got {len(fields)}{extra}")
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS):
        problem = _cron_field_problem(value, low, high, names)
        if problem:
            return f"{name} field '{value}': {problem}"
    return None


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> tuple[int, str | None]:
    if text.lower() in names:
        return names[text.lower()], None
    if not (text.isascii() and text.isdigit()):
        return 0, f"'{text}' is not a number" + (" or a name" if names else "")
    number = int(text)
    if names is _DAYS and number == 7:
        return 0, "7 is not a day of week here; use 0 (or SUN) for Sunday"
    if not low <= number <= high:
        return 0, f"{number} is out of range {low}-{high}"
    return number, None


def _cron_field_problem(value: str, low: int, high: int, names: dict[str, int]) -> str | None:
    for item in value.split(","):
        if not item:
            return "empty list item"
        base, slash, step = item.partition("/")
        if slash:
            if not (step.isascii() and step.isdigit()) or int(step) < 1:
                return f"step '{step}' must be a positive number"
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        start, problem = _cron_value(first, low, high, names)
        if problem:
            return problem
        if dash:
            end, problem = _cron_value(last, low, high, names)
            if problem:
                return problem
            if start > end:
                return f"range {base} runs backwards"
        elif slash:
            return f"a step needs '*' or a range before it; write */{step} or {base}-{high}/{step}"
    return None


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VAR_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_SECRET_KEY = re.compile(r"password|passwd|secret|token|api_?key|private_?key", re.IGNORECASE)


def looks_like_secret_key(key: str) -> bool:
    """A Store connection key whose literal value is a secret (lint W215; redacted when packing)."""
    return bool(_SECRET_KEY.search(key))

# --------------------------------------------------------------------------------------------
# Hints.
# --------------------------------------------------------------------------------------------


def closest(value: str, options: Sequence[str]) -> str | None:
    """The option `value` was most likely meant to be (case-insensitive), if any is close."""
    lowered = {o.lower(): o for o in options}
    match = difflib.get_close_matches(str(value).strip().lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def enum_hint(value: Any, options: Sequence[str]) -> str:
    listing = ", ".join(options)
    if value is None or str(value).strip() == "":
        return f"set it to one of: {listing}"
    close = closest(str(value), options)
    if close is not None:
        return f"did you mean '{close}'? (valid: {listing})"
    return f"'{value}' is not allowed; use one of: {listing}"


def dns_hint(value: str) -> str:
    rule = "use 1-63 lowercase letters, digits and '-', not starting or ending with '-'"
    suggestion = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:63].strip("-")
    if suggestion and suggestion != value and is_dns_safe(suggestion):
        return f"{rule}, e.g. '{suggestion}'"
    return rule


def semver_hint(value: str) -> str:
    generic = "use MAJOR.MINOR.PATCH with optional -prerelease and +build, e.g. 1.2.3 or 1.2.3-rc.1"
    text = value.strip()
    if text != value and is_semver(text):
        return f"remove the surrounding spaces: use '{text}'"
    if text[:1] in ("v", "V"):
        rest = text[1:]
        if is_semver(rest):
            return f"drop the leading '{text[0]}': use '{rest}'"
        return f"drop the leading '{text[0]}'; {generic}"
    cut = min((i for i in (text.find("-"), text.find("+")) if i >= 0), default=len(text))
    core, sep, qualifier = text[:cut], text[cut:cut + 1], text[cut + 1:]
    numbers = core.split(".")
    if all(n.isascii() and n.isdigit() for n in numbers) and core:
        fixed = [str(int(n)) for n in numbers]
        if len(numbers) < 3:
            candidate = ".".join(fixed + ["0"] * (3 - len(numbers))) + sep + qualifier
            extra = f", e.g. '{candidate}'" if is_semver(candidate) else ""
            return f"SemVer needs three numbers MAJOR.MINOR.PATCH{extra}"
        if len(numbers) > 3:
            return "SemVer has exactly three numbers MAJOR.MINOR.PATCH; put anything else in " \
                   "-prerelease or +build, e.g. 1.2.3+4"
        if fixed != numbers:
            candidate = ".".join(fixed) + sep + qualifier
            extra = f", e.g. '{candidate}'" if is_semver(candidate) else ""
            return f"numbers must not have leading zeros{extra}"
    return generic


def range_hint(value: str) -> str:
    generic = "use comparators such as ^1.2.0, ~1.2, >=1.0.0 <2.0.0, 1.x or *, joined by || for alternatives"
    if re.search(r"(^|[\s=<>~^|])[vV][0-9]", value):
        return f"drop the leading 'v' from versions; {generic}"
    if value.strip().endswith("||") or value.strip().startswith("||") or re.search(r"\|\|\s*\|\|", value):
        return f"remove the empty alternative next to '||'; {generic}"
    return generic


def duration_hint(value: Any) -> str:
    generic = "use number+unit parts with units h, m, s, e.g. 30m, 1h30m or 90s"
    text = str(value).strip()
    if isinstance(value, (int, float)) or re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return f"add a unit, e.g. {text}m"
    if text.startswith("-"):
        return "a timeout must be positive; " + generic
    if parse_duration(text) == 0.0:
        return "a timeout must be greater than zero, e.g. 30m"
    if re.fullmatch(r"([0-9]+(\.[0-9]+)?[a-z]+)+", text) and "d" in re.findall(r"[a-z]+", text):
        return "days are not a unit; use hours, e.g. 24h"
    if parse_duration(re.sub(r"\s+", "", text)) is not None:
        return "remove the spaces, e.g. " + re.sub(r"\s+", "", text)
    if parse_duration(text.lower()) is not None:
        return "units are lowercase, e.g. " + text.lower()
    return generic


def env_var_name_for(key: str) -> str:
    """A plausible ${VAR} name for a secret key (from the key's name, never from its value)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)     # adminPassword -> admin_Password
    name = re.sub(r"[^A-Za-z0-9]+", "_", words).strip("_").upper() or "SECRET"
    return name if ENV_NAME.fullmatch(name) else f"_{name}"

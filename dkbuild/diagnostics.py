"""Errors are values: every problem dkb finds is a Diagnostic, rendered by one renderer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from enum import Enum

from dkbuild.redaction import redact_text


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"     # reported; `--strict` makes it an error
    ADVISORY = "advisory"   # reported as a warning; only a [lint.severity] setting makes it block
    INFO = "info"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, located as precisely as we know: file (workspace-relative), line, column, field."""

    file: str
    line: int
    column: int
    code: str
    severity: Severity
    message: str
    field: str = ""
    hint: str = ""
    # Other files involved (e.g. the second definition of a conflicting dataset).
    related: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    # This instance is one dk's own validator lets through (a value only dkb's stricter check
    # rejects): governance.severity makes it advisory whatever the code's default severity.
    dk_accepts: bool = dataclasses.field(default=False, compare=False)

    def __post_init__(self) -> None:
        # A message may quote what it found (a value, a URL): never a credential inside it.
        for name in ("message", "hint"):
            text = getattr(self, name)
            clean = redact_text(text)
            if clean != text:
                object.__setattr__(self, name, clean)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def is_advisory(self) -> bool:
        return self.severity is Severity.ADVISORY

    def with_severity(self, severity: Severity) -> "Diagnostic":
        return self if severity is self.severity else replace(self, severity=severity)

    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            # An advisory finding is a warning that nothing raises by default: said by the flag, so
            # consumers that know only error/warning keep working.
            "severity": Severity.WARNING.value if self.is_advisory else self.severity.value,
            "advisory": self.is_advisory,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
            "related": list(self.related),
        }


class DkbError(Exception):
    """Unusable input (exit 2): carries the diagnostics that explain why."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        self.diagnostics = diagnostics if isinstance(diagnostics, list) else [diagnostics]
        super().__init__("; ".join(f"{d.location()}: {d.message}" for d in self.diagnostics))


def error(code: str, file: str, message: str, *, line: int = 0, column: int = 0,
          field: str = "", hint: str = "", related: tuple[str, ...] = (), dk_accepts: bool = False) -> Diagnostic:
    return Diagnostic(file, line, column, code, Severity.ERROR, message, field, hint, related, dk_accepts)


def warning(code: str, file: str, message: str, *, line: int = 0, column: int = 0,
            field: str = "", hint: str = "", related: tuple[str, ...] = (), dk_accepts: bool = False) -> Diagnostic:
    return Diagnostic(file, line, column, code, Severity.WARNING, message, field, hint, related, dk_accepts)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.column, d.code)

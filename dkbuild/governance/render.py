"""Render diagnostics as text (grouped by file, with hints), JSON, or SARIF 2.1.0."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dkbuild import __version__
from dkbuild.diagnostics import Diagnostic
from dkbuild.governance.codes import CODES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_text(diagnostics: list[Diagnostic], *, color: bool = False) -> str:
    """Grouped by file; each line starts with a clickable file:line:col."""
    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    for d in diagnostics:
        by_file[d.file].append(d)
    lines: list[str] = []
    for file in sorted(by_file):
        found = by_file[file]
        errors = sum(d.is_error for d in found)
        lines.append(_bold(f"{file} ({errors} error(s), {len(found) - errors} warning(s))", color))
        for d in found:
            # An advisory finding reads "warning (advisory)": dk accepts it and --strict does not raise it.
            word = "warning (advisory)" if d.is_advisory else d.severity.value
            sev = _paint(word, "31" if d.is_error else "33", color)
            field = f" [{d.field}]" if d.field else ""
            lines.append(f"  {d.location()}: {sev} {d.code}{field} {d.message}")
            if d.hint:
                lines.append(f"      hint: {d.hint}")
        lines.append("")
    return "\n".join(lines)


def summary_line(diagnostics: list[Diagnostic], targets: int) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    advisory = sum(d.is_advisory for d in diagnostics)
    if not diagnostics:
        return f"✓ {targets} target(s) linted: no problems"
    of_which = f" ({advisory} advisory)" if advisory else ""
    return f"{'✗' if errors else '⚠'} {targets} target(s) linted: {errors} error(s), {warnings} warning(s){of_which}"


def render_json(diagnostics: list[Diagnostic], targets: list[str], exit_code: int) -> dict[str, Any]:
    errors = sum(d.is_error for d in diagnostics)
    return {
        "version": 1,
        "tool": {"name": "dkb", "version": __version__},
        "summary": {"targets": len(targets), "errors": errors, "warnings": len(diagnostics) - errors,
                    "advisory": sum(d.is_advisory for d in diagnostics), "exit_code": exit_code},
        "targets": targets,
        "diagnostics": [d.to_json() for d in diagnostics],
    }


def render_sarif(diagnostics: list[Diagnostic]) -> dict[str, Any]:
    """SARIF 2.1.0 as GitHub code scanning accepts it: one run, rules with ids, results with
    physicalLocation (uri relative to the workspace root, srcroot base id)."""
    used = sorted({d.code for d in diagnostics})
    rules = []
    index_of = {}
    for i, code in enumerate(used):
        info = CODES.get(code)
        index_of[code] = i
        rules.append({
            "id": code,
            "name": code,
            "shortDescription": {"text": info.summary if info else code},
            "defaultConfiguration": {"level": _level(info.severity if info else "error")},
            "properties": {"tags": [info.group if info else "dkb"]},
        })
    results = []
    for d in diagnostics:
        region: dict[str, int] = {}
        if d.line:
            region = {"startLine": d.line, "startColumn": max(d.column, 1)}
        location: dict[str, Any] = {"artifactLocation": {"uri": d.file, "uriBaseId": "%SRCROOT%"}}
        if region:
            location["region"] = region
        text = d.message + (f" (hint: {d.hint})" if d.hint else "")
        results.append({
            "ruleId": d.code,
            "ruleIndex": index_of[d.code],
            "level": _level(d.severity.value),
            "message": {"text": text},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {"dkbDiagnostic/v1": f"{d.code}:{d.file}:{d.field}"},
        })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dkb", "version": __version__, "rules": rules}},
            "results": results,
        }],
    }


def _level(severity: str) -> str:
    """SARIF's level: an advisory finding is a "note" (reported, never failing a check)."""
    return {"error": "error", "warning": "warning"}.get(severity, "note")


def _bold(text: str, color: bool) -> str:
    return f"\033[1m{text}\033[0m" if color else text


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text

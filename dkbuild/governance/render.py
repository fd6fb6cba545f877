"""Render diagnostics as text (grouped by file, with hints), JSON, or SARIF 2.1.0."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

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


@dataclass(frozen=True)
class SourceRoot:
    """What SARIF uris are relative to: GitHub resolves them against the repository root, so that
    is the git work tree holding the workspace (`prefix` is the workspace's path inside it), or
    the workspace itself outside git."""
    path: Path
    prefix: str = ""

    @classmethod
    def of(cls, workspace_root: Path) -> "SourceRoot":
        from dkbuild.gitrev import GitError, repository_of

        try:
            repo = repository_of(workspace_root)
        except GitError:
            return cls(workspace_root.resolve())
        return cls(repo.toplevel, repo.prefix)

    def uri(self, file: str) -> str:
        """`file` (workspace-relative) as a relative URI reference from this root, percent-encoded."""
        return quote((PurePosixPath(self.prefix) / file).as_posix() if self.prefix else file, safe="/")


def render_sarif(diagnostics: list[Diagnostic], source: SourceRoot | None = None) -> dict[str, Any]:
    """SARIF 2.1.0 as GitHub code scanning accepts it: one run, rules with ids, results with a
    physicalLocation whose uri is relative to %SRCROOT%, defined in originalUriBaseIds as `source`
    (the git root; without one, uris are relative to the workspace and the base is left undefined)."""
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
        uri = source.uri(d.file) if source else quote(d.file, safe="/")
        location: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}
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
    run: dict[str, Any] = {"tool": {"driver": {"name": "dkb", "version": __version__, "rules": rules}}}
    if source is not None:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": source.path.as_uri() + "/"}}
    run["results"] = results
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _level(severity: str) -> str:
    """SARIF's level: an advisory finding is a "note" (reported, never failing a check)."""
    return {"error": "error", "warning": "warning"}.get(severity, "note")


def _bold(text: str, color: bool) -> str:
    return f"\033[1m{text}\033[0m" if color else text


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text

"""Progress on long work: a live rich display on a terminal, plain lines otherwise (CI logs), JSON
lines with `--output json`. One line per finished target, for builds and publishes alike."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from dkbuild.engine.counts import BUILD_STATUSES, count_statuses

BUILD_KINDS = BUILD_STATUSES


class Started(Protocol):
    @property
    def label(self) -> str: ...


class Finished(Protocol):
    """An ActionResult, or a publish result: what a progress line shows."""
    label: str
    status: str
    duration: float
    errors: list[str]

    @property
    def note(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


class Progress(Protocol):
    def started(self, work: Started) -> None: ...
    def finished(self, result: Finished) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.done = 0
        self.stream = stream
        self.lock = threading.Lock()

    def started(self, work: Started) -> None:
        pass

    def finished(self, result: Finished) -> None:
        with self.lock:
            self.done += 1
            print(self._line(result), file=self.stream, flush=True)

    def _line(self, result: Finished) -> str:
        note = f" — {result.errors[0]}" if result.errors else (f" ({result.note})" if result.note else "")
        return f"[{self.done}/{self.total}] {result.status:<7} {result.label} {result.duration:.2f}s{note}"

    def close(self) -> None:
        pass


class JsonLinesProgress(PlainProgress):
    """One JSON object per finished target: {"done", "total", then the target's own JSON}."""

    def _line(self, result: Finished) -> str:
        return json.dumps({"done": self.done, "total": self.total, **result.to_json()}, ensure_ascii=False)


class RichProgress:
    """Counts, cache hits and the targets running right now."""

    def __init__(self, total: int, what: str = "building", kinds: Sequence[str] = BUILD_KINDS):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=self.console, transient=True)
        self.task = self.bar.add_task(what, total=total)
        self.running: list[str] = []
        self.counts = count_statuses((), kinds)
        self.lock = threading.Lock()
        self.bar.start()

    def _describe(self) -> None:
        counts = " ".join(f"{k} {v}" for k, v in self.counts.items())
        current = ", ".join(self.running[:3]) + (" …" if len(self.running) > 3 else "")
        self.bar.update(self.task, description=f"{counts} | {current}")

    def started(self, work: Started) -> None:
        with self.lock:
            self.running.append(work.label)
            self._describe()

    def finished(self, result: Finished) -> None:
        with self.lock:
            if result.label in self.running:
                self.running.remove(result.label)
            self.counts[result.status] = self.counts.get(result.status, 0) + 1
            if result.status == "failed":
                self.console.print(f"[red]failed[/red] {result.label}: {result.errors[0] if result.errors else ''}")
            self.bar.advance(self.task)
            self._describe()

    def close(self) -> None:
        self.bar.stop()


class Silent:
    """For --output json and dry runs: the report says it all."""

    def started(self, work: Started) -> None:
        pass

    def finished(self, result: Finished) -> None:
        pass

    def close(self) -> None:
        pass


def make_progress(total: int, stream: TextIO = sys.stderr, *, output: str = "text", what: str = "building",
                  kinds: Sequence[str] = BUILD_KINDS) -> Progress:
    if output == "json":
        return JsonLinesProgress(total, stream)
    return RichProgress(total, what, kinds) if stream.isatty() else PlainProgress(total, stream)

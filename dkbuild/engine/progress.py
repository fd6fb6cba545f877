"""Progress on long work: a live rich display on a terminal, plain lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO

from dkbuild.engine.action import Action, ActionResult
from dkbuild.engine.counts import BUILD_STATUSES, count_statuses


class Progress(Protocol):
    def started(self, action: Action) -> None: ...
    def finished(self, result: ActionResult) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.done = 0
        self.stream = stream
        self.lock = threading.Lock()

    def started(self, action: Action) -> None:
        pass

    def finished(self, result: ActionResult) -> None:
        with self.lock:
            self.done += 1
            note = f" — {result.errors[0]}" if result.errors else (f" ({result.note})" if result.note else "")
            print(f"[{self.done}/{self.total}] {result.status:<7} {result.label} {result.duration:.2f}s{note}",
                  file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """Counts, cache hits and the targets running right now."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=self.console, transient=True)
        self.task = self.bar.add_task("building", total=total)
        self.running: list[str] = []
        self.counts = count_statuses((), BUILD_STATUSES)
        self.lock = threading.Lock()
        self.bar.start()

    def _describe(self) -> None:
        counts = " ".join(f"{k} {v}" for k, v in self.counts.items())
        current = ", ".join(self.running[:3]) + (" …" if len(self.running) > 3 else "")
        self.bar.update(self.task, description=f"{counts} | {current}")

    def started(self, action: Action) -> None:
        with self.lock:
            self.running.append(action.label)
            self._describe()

    def finished(self, result: ActionResult) -> None:
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

    def started(self, action: Action) -> None:
        pass

    def finished(self, result: ActionResult) -> None:
        pass

    def close(self) -> None:
        pass


def make_progress(total: int, stream: TextIO = sys.stderr) -> Progress:
    return RichProgress(total) if stream.isatty() else PlainProgress(total, stream)

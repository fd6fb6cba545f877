"""A bound on RPCs open at once, shared by every thread of a build, that remembers its high-water
mark (so tests and `--output json` can show the bound held)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Gate:
    def __init__(self, limit: int):
        self.limit = limit
        self.peak = 0
        self._open = 0
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            with self._lock:
                self._open += 1
                self.peak = max(self.peak, self._open)
            try:
                yield
            finally:
                with self._lock:
                    self._open -= 1

"""How long one run keeps trying a registry that does not answer: per-request limits (timeout,
retries) and a circuit breaker over the whole run.

Retries alone bound one request; a publish of 100 packages is hundreds of requests, so a dead
registry cost minutes of retries, one target after another. The breaker counts failed attempts
(no answer, a refused or reset connection, 429 or 5xx) across every request of the client. It
opens when one request has used all its retries, when attempts have failed for `give_up_after`
seconds with no answer in between, or after `max_failures` failed attempts in the run. Once open
it stays open: every later call fails at once with `CircuitOpen`, naming the first failure.
Any answer from the registry (even a 4xx) closes the current streak.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_GIVE_UP_AFTER = 20.0
DEFAULT_MAX_FAILURES = 100


@dataclass(frozen=True)
class RegistryLimits:
    """[registry] timeout, retries, give_up_after and max_failures (or DKB_REGISTRY_TIMEOUT, ...)."""
    timeout: float = DEFAULT_TIMEOUT              # seconds per connect, send or read
    retries: int = DEFAULT_RETRIES                # per request, after the first attempt
    give_up_after: float = DEFAULT_GIVE_UP_AFTER  # seconds of failed attempts with no answer
    max_failures: int = DEFAULT_MAX_FAILURES      # failed attempts in the whole run

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> RegistryLimits:
        """From the validated [registry] section, as plain data."""
        return cls(**{name: section[name] for name in cls.__dataclass_fields__})


class Breaker:
    """Thread-safe: a client shares one breaker between its threads."""

    def __init__(self, limits: RegistryLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._streak = 0                 # failed attempts since the last answer
        self._streak_since = 0.0         # when the first of them started
        self.failures = 0                # failed attempts in the run
        self.reason = ""                 # why it opened: the failure and the limit; "" while closed
        self.cause = ""                  # the limit alone

    @property
    def open(self) -> bool:
        return bool(self.reason)

    def answered(self) -> None:
        with self._lock:
            self._streak = 0

    def failed(self, started: float, what: str) -> str:
        """Record a failed attempt that began at `started`; the reason when this opens the breaker."""
        with self._lock:
            if self.reason:
                return self.reason
            now = self._clock()
            if self._streak == 0:
                self._streak_since = started
            self._streak += 1
            self.failures += 1
            limits = self.limits
            waited = now - self._streak_since
            if self._streak > limits.retries:
                self.cause = f"{self._streak} attempts in a row failed over {waited:.1f} s"
            elif waited >= limits.give_up_after:
                self.cause = f"no answer for {waited:.1f} s, the give_up_after limit"
            elif self.failures >= limits.max_failures:
                self.cause = f"{self.failures} failed attempts in this run, the max_failures limit"
            if self.cause:
                self.reason = f"{what} ({self.cause})"
            return self.reason

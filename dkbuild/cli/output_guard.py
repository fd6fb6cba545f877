"""The last exit: whatever dkb prints (messages, JSON, tracebacks) passes dkbuild.redaction's
string rules, so a URL's userinfo or a `password=...` an argument or a library error carried is
never echoed, whichever code path printed it."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from dkbuild.redaction import redact_text


class RedactingStream:
    """A text stream that redacts each write; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: Any) -> int:
        if isinstance(text, str):
            text = redact_text(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_output() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))

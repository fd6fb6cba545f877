"""A loopback OpenLineage HTTP backend for tests: records every POST (path, headers, event)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class LineageReceiver:
    """`status` answers every event; `status_of(event)`, when given, answers each one (e.g. to
    refuse some of them)."""

    def __init__(self, status: int = 201, status_of: Callable[[dict[str, Any]], int] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(body)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "event": event})
                self.send_response(status_of(event) if status_of else status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r["event"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

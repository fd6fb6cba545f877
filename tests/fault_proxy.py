"""`FaultProxy`, a test fixture: a loopback HTTP proxy in front of the real registry (tests/registry.py)
that counts every request and can break chosen answers the way networks break them.

Every request is forwarded to the registry, which does the work (a PUT is stored), and its answer
is then sent back whole, or broken half way through (through the body when there is one):
- `hang`: half the answer, then nothing, until the proxy is closed (the client must time out);
- `reset`: half the answer, then a TCP reset;
- `truncate`: half the answer, then a clean close (a short body under a full Content-Length).
`inject(kind, after=N, times=T, match=S)` breaks the answers to the requests after the next N (T of
them, or all), optionally only those whose "METHOD path" contains S.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("hang", "reset", "truncate")


@dataclass
class _Rule:
    kind: str
    after: int
    times: int | None
    match: str


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.seen: list[tuple[str, str, int, str]] = []     # (method, path, status, fault or "")
        self.rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda *args: None        # broken connections are the point
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def inject(self, kind: str, *, after: int = 0, times: int | None = None, match: str = "") -> None:
        assert kind in FAULTS, kind
        with self._lock:
            self.rules.append(_Rule(kind, len(self.seen) + after, times, match))

    def heal(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, method: str, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for m, p, _, _ in self.seen if m == method and path_part in p)

    def faults(self) -> list[str]:
        with self._lock:
            return [f for *_, f in self.seen if f]

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def _fault_for(self, number: int, method: str, path: str) -> str:
        with self._lock:
            for rule in self.rules:
                if number > rule.after and rule.match in f"{method} {path}" and rule.times != 0:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.kind
        return ""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    number = len(proxy.seen) + 1
                    proxy.seen.append((self.command, self.path, 0, ""))
                fault = proxy._fault_for(number, self.command, self.path)
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    reply = upstream.getresponse()
                    data = reply.read()
                except OSError:
                    self._reset()              # the registry is gone: so is the connection to it
                    return
                finally:
                    upstream.close()
                with proxy._lock:
                    proxy.seen[number - 1] = (self.command, self.path, reply.status, fault)
                head = [f"HTTP/1.1 {reply.status} {reply.reason}"]
                for name, value in reply.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        head.append(f"{name}: {value}")
                content_length = reply.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                head.append(f"Content-Length: {content_length or 0}")
                raw_head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
                payload = raw_head + (b"" if self.command == "HEAD" else data)
                if not fault:
                    self.wfile.write(payload)
                    self.wfile.flush()
                    return
                cut = len(raw_head) + len(data) // 2 if data and self.command != "HEAD" else len(raw_head) // 2
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                self.close_connection = True
                if fault == "hang":
                    proxy._closed.wait(120)
                elif fault == "reset":
                    self._reset()

            def _reset(self) -> None:
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

        return Handler

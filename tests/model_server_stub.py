"""A stand-in model server speaking Label Studio's ML-backend HTTP shape, on 127.0.0.1, for
tests that need a server to misbehave on cue (garbage, slowness, huge answers, 5xx). The
round trip with a real ``label-studio-ml`` backend is tests/ml_backend/."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"  # ok | garbage | slow | huge | error | fail-once | wrong-count
        self.auth: tuple[str, str] | None = None
        self.calls: list[tuple[str, str, Any]] = []
        self.field = ("label", "text", "a")  # from_name, to_name, the choice predicted
        self._failed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        return [f"{m} {p}" for m, p, _ in self.calls]


class _Handler(BaseHTTPRequestHandler):
    server: StubServer

    def log_message(self, *args: Any) -> None:
        pass

    def _authorized(self) -> bool:
        if self.server.auth is None:
            return True
        want = base64.b64encode(":".join(self.server.auth).encode()).decode()
        return self.headers.get("Authorization") == f"Basic {want}"

    def _send(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.calls.append(("GET", self.path, None))
        if not self._authorized():
            return self._send(401, b'{"error": "auth"}')
        self._send(200, json.dumps({"status": "UP", "model_dir": "stub"}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.calls.append(("POST", self.path, body))
        if not self._authorized():
            return self._send(401, b'{"error": "auth"}')
        if self.path == "/setup":
            return self._send(200, b'{"model_version": "stub-1"}')
        if self.path == "/webhook":
            return self._send(201, b'{"job_id": "1"}')
        self._predict(body)

    def _predict(self, body: Any) -> None:
        mode, server = self.server.mode, self.server
        if mode == "garbage":
            return self._send(200, b"<html>Internal proxy page</html>")
        if mode == "slow":
            time.sleep(3)
        if mode == "error" or (mode == "fail-once" and not server._failed):
            server._failed = True
            return self._send(500, b"Traceback: model crashed")
        if mode == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no length: streamed until the client stops reading
            try:
                for _ in range(40 * 1024):  # 40 MiB, past the 32 MiB the client reads
                    self.wfile.write(b"[" * 1024)
            except OSError:
                pass
            return None
        from_name, to_name, choice = server.field
        n = len(body["tasks"]) + (1 if mode == "wrong-count" else 0)
        one = {
            "result": [
                {
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "choices",
                    "value": {"choices": [choice]},
                }
            ],
            "score": 0.75,
        }
        self._send(200, json.dumps({"results": [one] * n, "model_version": "stub-1"}).encode())


@contextmanager
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

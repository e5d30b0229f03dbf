"""Helpers of the browser tests: a real ``labelfarm serve`` on a free port, signing in."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pages"))

import contextlib

from lf_world import PASSWORD, World

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, world: World, data_dir: Path) -> None:
        self.world = world
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LABELFARM_DATA_DIR": str(data_dir),
            "LABELFARM_SECRET_KEY": world.settings.secret_key,
            "LABELFARM_HOST": "127.0.0.1",
            "LABELFARM_PORT": str(self.port),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from labelfarm.cli import app; app()", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60  # a loaded machine imports slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()  # not left running (with its job worker) after the test
        raise RuntimeError("server did not start in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def api(self, username: str) -> httpx.Client:
        """An API client signed in as ``username`` (session cookie and CSRF header)."""
        client = httpx.Client(base_url=self.url, timeout=30)
        r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        r.raise_for_status()
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return client


def login(page: Any, base: str, username: str, next_path: str = "/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{base}{next_path}")


def wait_js(page: Any, expr: str, timeout: float = 15.0) -> None:
    """Poll ``expr`` in the page (the page's CSP forbids eval, so no wait_for_function)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if page.evaluate(f"() => Boolean({expr})"):
                return
        except Exception as exc:  # the page is navigating
            if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                raise
        time.sleep(0.03)
    raise AssertionError(f"timed out waiting for {expr}")


class Link:
    """A TCP link from the browser to a server that a test can cut: while cut, every open
    connection is dropped and every new one is closed at once, as when a site's line goes
    down. Nothing the browser sends reaches the server then, whatever the browser's own
    offline emulation lets through."""

    def __init__(self, server: Server) -> None:
        self._target = ("127.0.0.1", server.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.is_cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self.is_cut = True
            for s in self._open:
                _drop(s)
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self.is_cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self.is_cut:
                    _drop(client)
                    continue
                try:
                    upstream = socket.create_connection(self._target, timeout=5)
                except OSError:
                    _drop(client)
                    continue
                upstream.settimeout(None)
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                if self.is_cut:
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _drop(src)
            _drop(dst)


def _drop(s: socket.socket) -> None:
    """Close a socket with a reset (SO_LINGER 0), not a polite close."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.close()


API = "**/api/v1/**"


def go_offline(context: Any, link: Link) -> None:
    """The connection drops: the browser's offline emulation (``navigator.onLine``, the
    page's banner), every API request failing as on a dropped line, and the link itself cut,
    so nothing the browser sends reaches the server (Chromium's emulation and routing have
    each let a request through now and then)."""
    link.cut()
    context.set_offline(True)
    context.route(API, lambda route: route.abort("internetdisconnected"))


def go_online(context: Any, link: Link) -> None:
    link.restore()
    context.unroute(API)
    context.set_offline(False)

"""What ``bench/queue.py`` needs from a server under test, and helpers both targets share.

A target starts its server as a subprocess on 127.0.0.1, sets up users and projects over HTTP,
and tells the load client (``_loadclient.py``) how to talk to it. Nothing here talks to any
address other than 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

LABELS = ("a", "b", "c")


class BenchError(RuntimeError):
    """The benchmark cannot go on (a server failed to start, a setup call failed)."""


@dataclass
class Export:
    seconds: float
    n_bytes: int
    peak_rss_mb: float


class Target(Protocol):
    """A server under test. ``prefix`` names its metrics, e.g. ``sqlite`` or ``label-studio``."""

    prefix: str
    server_pid: int

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def create_annotators(self, n: int) -> list[str]:
        """``n`` annotator users, each with its own API token; returns the tokens."""
        ...

    def create_project(self, name: str) -> int: ...

    def import_items(self, project_id: int, n: int) -> float:
        """Imports ``n`` text items; returns the seconds the upload took."""
        ...

    def create_annotated_project(self, name: str, n: int) -> int:
        """A project whose ``n`` items each carry one annotation, made as fast as possible."""
        ...

    def export(self, project_id: int, rss: Any) -> Export:
        """Streams the project's export to nowhere; ``rss`` is the server's PeakRSS sampler."""
        ...

    def load_config(self, project_id: int) -> dict[str, Any]:
        """The flavour-specific part of the load client's config."""
        ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    """Polls ``url`` until it answers 200; fails early if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"server exited with {process.returncode}; log tail:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"server not healthy after {timeout_s:.0f} s; log tail:\n{tail(log)}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Starts ``argv`` in its own process group, output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes] | None, grace_s: float = 10) -> None:
    """SIGTERM to the process group this benchmark started, then SIGKILL after ``grace_s``."""
    if process is None or process.poll() is not None:
        return
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait(5)


class Api:
    """A small synchronous JSON client for setup calls; raises ``BenchError`` on failure."""

    def __init__(self, base_url: str, auth_header: str, timeout_s: float = 120) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": auth_header}, timeout=timeout_s
        )

    def call(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise BenchError(f"{method} {path} → {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def stream_to_nowhere(self, path: str, timeout_s: float) -> int:
        """GETs ``path`` and discards the body as it arrives; returns its size in bytes."""
        n_bytes = 0
        with self.client.stream("GET", path, timeout=timeout_s) as response:
            if response.status_code != 200:
                response.read()
                raise BenchError(f"GET {path} → {response.status_code}: {response.text[:500]}")
            for chunk in response.iter_raw(1 << 16):
                n_bytes += len(chunk)
        return n_bytes

    def close(self) -> None:
        self.client.close()


def item_text(i: int) -> str:
    return f"item {i}: the quick brown fox jumps over the lazy dog"


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box: list[float] = []
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - t0)

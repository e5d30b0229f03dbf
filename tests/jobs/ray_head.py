"""A real Ray head for the tests: its own process tree (``ray start --head --block``), bound
to 127.0.0.1, started for each test module that uses it and stopped after it (its own
processes only, by pid: ``ray stop`` would stop every Ray instance on the machine).

Its workers run this virtual environment's Python (the ``ray`` next to it), so they import
the labelfarm under test.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

# Ray replaces 127.0.0.1 by the machine's other address (and listens there) unless this is
# set, in the head's environment and in this process before ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

CPUS = 2
OBJECT_STORE_BYTES = 200_000_000
START_TIMEOUT = 90.0
PR_SET_PDEATHSIG = 1
SKIP_REASON = "Ray is not installed: pip install 'labelfarm[ray]'"


@dataclass
class RayHead:
    address: str
    process: subprocess.Popen
    temp_dir: Path
    started_in: float  # seconds `ray start` took to be ready
    seen: dict[int, psutil.Process] = field(default_factory=dict)  # every process of the tree

    def processes(self) -> list[psutil.Process]:
        """The head's process tree as it is now (workers included)."""
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.seen.update((p.pid, p) for p in tree if p.pid not in self.seen)
        return tree


_head: RayHead | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_binary() -> str:
    found = Path(sys.executable).with_name("ray")
    if not found.exists():
        pytest.skip(SKIP_REASON)
    return str(found)


def start() -> RayHead:
    """The head, started on first use (until :func:`stop`)."""
    global _head
    if _head is not None:
        return _head
    temp_dir = Path(tempfile.mkdtemp(prefix="lf-ray-"))
    port = free_port()
    command = [
        ray_binary(), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={port}",
        "--dashboard-host=127.0.0.1", "--include-dashboard=false",
        f"--num-cpus={CPUS}", f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats", f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = temp_dir / "head.log"
    began = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
    while "Ray runtime started" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() - began > START_TIMEOUT:
            process.kill()
            raise RuntimeError("the Ray head did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.1)
    _head = RayHead(f"127.0.0.1:{port}", process, temp_dir, time.monotonic() - began)
    _head.processes()
    atexit.register(stop)  # should the session end without its fixtures' teardown
    return _head


def _die_with_parent() -> None:
    """In the head's process before it runs: SIGTERM it (and so its cluster) when the test
    process dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop() -> None:
    """Leave the cluster, then end the head's processes (and any it left behind)."""
    global _head
    if _head is None:
        return
    from labelfarm.jobs.ray_executor import disconnect

    disconnect()
    head, _head = _head, None
    head.processes()
    head.process.terminate()
    try:
        head.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        head.process.kill()
        head.process.wait(timeout=10)
    left = [p for p in head.seen.values() if p.is_running()]  # is_running: not a reused pid
    for p in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(left, timeout=10)
    shutil.rmtree(head.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """A Ray head for the module's tests, stopped after them: its processes would take CPU
    from the timing tests that run later in the session."""
    pytest.importorskip("ray", reason=SKIP_REASON)
    yield start()
    stop()

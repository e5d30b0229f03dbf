"""The processes ``bench/models.py`` runs: ``labelfarm serve`` (its own worker turned off),
``labelfarm worker`` processes it starts and measures itself, and a local Ray head.

Everything binds 127.0.0.1. Each process is started in its own process group and stopped
by that group's id, never by name (other Ray clusters on the machine are left alone).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _labelfarm import LabelfarmTarget
from _targets import Api, BenchError, free_port, start_process, stop_process, tail

FINISHED = ("done", "failed", "cancelled")


class ModelsTarget(LabelfarmTarget):
    """``labelfarm serve`` without its own worker: the benchmark starts the workers."""

    env: dict[str, str]

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = super()._env(data_dir)
        env.update(LABELFARM_RUN_WORKER="false", LABELFARM_WORKER_POLL_SECONDS="0.2")
        self.env = env
        return env

    def cli(self, *args: str, timeout_s: float = 1800) -> str:
        done = subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=timeout_s
        )
        if done.returncode != 0:
            raise BenchError(
                f"labelfarm {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    @contextlib.contextmanager
    def worker(self, ray_address: str = "") -> Iterator[subprocess.Popen[bytes]]:
        """A ``labelfarm worker`` process (on the Ray cluster at ``ray_address`` if given)."""
        env = {**self.env, "LABELFARM_RAY_ADDRESS": ray_address}
        log = self.log.with_name(f"worker-{self.backend}{'-ray' if ray_address else ''}.log")
        process = start_process([*self.command, "worker"], env, log)
        try:
            time.sleep(0.5)
            if process.poll() is not None:
                raise BenchError(f"labelfarm worker exited at once:\n{tail(log)}")
            yield process
        finally:
            stop_process(process, grace_s=20)


def wait_job(api: Api, job_id: int, timeout_s: float, poll_s: float = 0.1) -> dict[str, Any]:
    """Polls a job until it ends; fails unless it ends ``done``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = api.call("GET", f"/api/v1/jobs/{job_id}")
        job = job.get("job", job)
        if job["state"] in FINISHED:
            if job["state"] != "done":
                raise BenchError(f"job {job_id} ({job['kind']}) {job['state']}: {job.get('error')}")
            return dict(job)
        time.sleep(poll_s)
    raise BenchError(f"job {job_id} not finished after {timeout_s:.0f} s")


def wait_running(api: Api, job_id: int, timeout_s: float = 60) -> dict[str, Any]:
    """Polls a job until a worker has taken it up (or it ended already)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = api.call("GET", f"/api/v1/jobs/{job_id}")
        job = job.get("job", job)
        if job["state"] != "queued":
            return dict(job)
        time.sleep(0.02)
    raise BenchError(f"job {job_id} still queued after {timeout_s:.0f} s")


def while_running(load: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The load's latencies of the requests started while ``job`` ran (from its row's
    ``started_at`` to ``finished_at``); the whole window's stay as ``<op>_ms_window``."""
    start, end = _when(job["started_at"]), _when(job["finished_at"])
    out = dict(load)
    for op in ("next", "submit"):
        inside = sorted(ms for t, ms in load["samples"][op] if start <= t <= end)
        out[f"{op}_ms_window"] = load[f"{op}_ms"]
        out[f"{op}_ms"] = {"n": len(inside), "p99": _percentile(inside, 99)}
    out.pop("samples")
    return out


def _percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile, as the load client computes it."""
    if not ordered:
        return 0.0
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def job_seconds(job: dict[str, Any]) -> float:
    """From the worker taking the job up to its end, as the job row records it."""
    return _when(job["finished_at"]) - _when(job["started_at"])


def _when(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class RayHead:
    """``ray start --head --block`` bound to 127.0.0.1 with a capped object store."""

    def __init__(self, log_dir: Path, object_store_mb: int = 300) -> None:
        self.log = log_dir / "ray-head.log"
        self.port = free_port()
        self.object_store_mb = object_store_mb
        self.process: subprocess.Popen[bytes] | None = None
        self.tmp = log_dir / "ray"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        ray = Path(sys.executable).with_name("ray")
        command = str(ray) if ray.exists() else shutil.which("ray")
        if not command:
            raise BenchError("ray is not installed: pip install 'labelfarm[ray]'")
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        argv = [
            command,
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.port}",
            f"--object-store-memory={self.object_store_mb * 2**20}",
            "--dashboard-host=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.tmp}",
            f"--num-cpus={os.cpu_count() or 2}",
        ]
        self.process = start_process(argv, env, self.log)
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the Ray head did not start:\n{tail(self.log)}")
            time.sleep(0.2)

    def stop(self) -> None:
        stop_process(self.process, grace_s=5)

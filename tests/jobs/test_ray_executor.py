"""The Ray executor on a real Ray head (127.0.0.1 only): the same results as in-process,
bounded work in flight, cancel that stops a task stuck in native code, and failures told
apart (a task's own error is final; a lost worker process is retried)."""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from ray_head import SKIP_REASON, RayHead, free_port, ray_head  # noqa: F401

from labelfarm.jobs.errors import ExecutorError, JobCancelled
from labelfarm.jobs.executor import LocalExecutor
from labelfarm.jobs.ray_executor import MAX_RETRIES, RayExecutor

ray = pytest.importorskip("ray", reason=SKIP_REASON)
# The tasks below are this module's functions: shipped to Ray's workers by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.slow


def never() -> bool:
    return False


# -- the tasks (module-level, as the executor's contract asks) ---------------------------------
def gram_rows(seed: int) -> tuple[int, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(64, 32))
    return os.getpid(), (x @ x.T).sum(axis=1)


def project_rows(seed: int, weights: np.ndarray) -> tuple[int, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(64, weights.shape[0]))
    return os.getpid(), np.tanh(x @ weights)


def square(x: int) -> int:
    return x * x


def log_attempt(marker: str) -> int:
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    return len(Path(marker).read_text().splitlines())


def fail(marker: str) -> None:
    log_attempt(marker)
    raise ValueError("bad input in row 3")


def crash_once(marker: str) -> int:
    if log_attempt(marker) == 1:
        os._exit(1)
    return 42


def crash_always(marker: str) -> None:
    log_attempt(marker)
    os._exit(1)


def stuck_in_native_code(marker: str) -> None:
    log_attempt(marker)
    ctypes.CDLL(None).sleep(600)  # C's sleep: no Python bytecode runs till it returns


# -- the tests ---------------------------------------------------------------------------------
@pytest.fixture
def executor(ray_head: RayHead) -> RayExecutor:  # noqa: F811
    return RayExecutor(ray_head.address)


def run_map(ex: Any, fn: Any, args: Sequence[Any], **kw: Any) -> dict[int, Any]:
    results: dict[int, Any] = {}
    ex.map(fn, args, on_result=results.__setitem__, cancelled=never, **kw)
    return results


def test_map_on_ray_equals_local(executor: RayExecutor) -> None:
    seeds = list(range(24))
    weights = np.random.default_rng(7).normal(size=(32, 8))
    on_ray = run_map(executor, gram_rows, seeds)
    local = run_map(LocalExecutor(), gram_rows, seeds)
    shared_ray = run_map(executor, project_rows, seeds, shared=weights)
    shared_local = run_map(LocalExecutor(), project_rows, seeds, shared=weights)
    assert sorted(on_ray) == sorted(shared_ray) == seeds
    for i in seeds:
        np.testing.assert_allclose(on_ray[i][1], local[i][1], rtol=1e-12)
        np.testing.assert_allclose(shared_ray[i][1], shared_local[i][1], rtol=1e-12)
    # it really ran in Ray's worker processes, not here
    assert {pid for pid, _ in on_ray.values()}.isdisjoint({os.getpid()})
    pid, row = executor.call(gram_rows, 5, cancelled=never)
    assert pid != os.getpid() and np.allclose(row, local[5][1])


class Recorded(Sequence[int]):
    """A sequence that notes how far it has been read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.read = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        self.read = max(self.read, i + 1)
        return i


def test_map_keeps_a_bounded_number_of_tasks_in_flight(executor: RayExecutor) -> None:
    args = Recorded(600)
    seen: list[int] = []
    in_flight: list[int] = []

    def on_result(i: int, r: int) -> None:
        assert r == i * i
        seen.append(i)
        in_flight.append(args.read - len(seen) + 1)

    executor.map(square, args, on_result=on_result, cancelled=never)
    assert sorted(seen) == list(range(600))
    limit = 2 * 2  # two per CPU of the test head
    assert max(in_flight) <= limit
    assert max(in_flight) >= 2  # and the cluster's CPUs were used in parallel


def test_cancel_stops_a_task_stuck_in_native_code(executor: RayExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "stuck"
    started = {}

    def cancelled() -> bool:
        if marker.exists() and "at" not in started:
            started["at"] = time.monotonic()
        return "at" in started and time.monotonic() - started["at"] > 0.5

    with pytest.raises(JobCancelled):
        executor.map(stuck_in_native_code, [str(marker)], on_result=print, cancelled=cancelled)
    assert time.monotonic() - started["at"] < 0.5 + 1.5  # noticed within a poll or so
    pid = int(marker.read_text().split()[0])
    deadline = time.monotonic() + 15
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the stuck task's worker process is still alive"
        time.sleep(0.1)
    assert executor.call(square, 9, cancelled=never) == 81  # the cluster is still usable


def test_a_task_error_is_final(executor: RayExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "fail"
    with pytest.raises(ExecutorError) as caught:
        executor.call(fail, str(marker), cancelled=never)
    assert caught.value.retryable is False
    assert str(caught.value) == "ValueError: bad input in row 3"
    assert len(marker.read_text().splitlines()) == 1  # Ray did not run it again


def test_a_lost_worker_process_is_retried_by_ray(executor: RayExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "crash-once"
    assert executor.call(crash_once, str(marker), cancelled=never) == 42
    pids = marker.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]


def test_a_worker_process_lost_every_time_is_retryable(
    executor: RayExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "crash-always"
    with pytest.raises(ExecutorError) as caught:
        executor.call(crash_always, str(marker), cancelled=never)
    assert caught.value.retryable is True
    assert "WorkerCrashedError" in str(caught.value)
    assert len(marker.read_text().splitlines()) == 1 + MAX_RETRIES


DRIVER = """
import ctypes, os, sys
from labelfarm.jobs.ray_executor import RayExecutor

def stuck(marker):
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    ctypes.CDLL(None).sleep(600)

RayExecutor(sys.argv[1]).call(stuck, sys.argv[2], cancelled=lambda: False)
"""


def test_a_dead_workers_tasks_end_with_it(ray_head: RayHead, tmp_path: Path) -> None:  # noqa: F811
    """A job worker killed mid-job (``kill -9``) leaves no task running on the cluster."""
    marker = tmp_path / "task-pid"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, ray_head.address, str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()):
            assert driver.poll() is None and time.monotonic() < deadline, "the task never ran"
            time.sleep(0.1)
        task = psutil.Process(int(marker.read_text()))
        assert task.name().startswith("ray::")
    finally:
        driver.kill()
        driver.wait()
    _, alive = psutil.wait_procs([task], timeout=15)
    assert alive == [], "the dead worker's task still runs on the cluster"


def test_an_unreachable_cluster_fails_fast_and_retryable() -> None:
    began = time.monotonic()
    with pytest.raises(ExecutorError) as caught:
        RayExecutor(f"127.0.0.1:{free_port()}").call(square, 2, cancelled=never)
    assert caught.value.retryable is True
    assert "cannot reach the Ray cluster" in str(caught.value)
    assert time.monotonic() - began < 10


def test_the_ray_head_listens_on_loopback_only(
    ray_head: RayHead,  # noqa: F811
    executor: RayExecutor,
) -> None:
    run_map(executor, square, range(8))  # workers up, as they are during a job
    listening: list[tuple[str, str, int]] = []
    # the head's processes and its workers, and this process (a driver of the cluster)
    for process in [*ray_head.processes(), psutil.Process()]:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        for c in connections:  # TCP listening, or UDP bound
            if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM:
                listening.append((process.name(), c.laddr.ip, c.laddr.port))
    assert any(port == int(ray_head.address.rsplit(":", 1)[1]) for _, _, port in listening)
    assert any(name.startswith("ray::") for name, _, _ in listening)  # workers' ports too
    exposed = [s for s in listening if not loopback(s[1])]
    assert exposed == []


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback

"""Real ``labelfarm worker`` processes on the test database: a worker killed with ``kill -9``
mid-job and the job finished by another after the lease; SIGTERM giving the job back;
several processes claiming at once; ``serve``'s supervisor restarting a dying worker."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from job_helpers import wait_for, worker_command

from labelfarm.cli.supervise import Supervisor, supervised_worker
from labelfarm.services import job_queue

pytestmark = pytest.mark.slow


def _start(env: dict[str, str], tmp_path: Path, name: str, *extra: str) -> subprocess.Popen:
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        worker_command("--name", name, *extra), env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _stopped(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)


def _runs(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_a_killed_worker_s_job_is_finished_by_another(world, worker_env, enqueue, tmp_path):
    log = tmp_path / "runs.log"
    job_id = enqueue("test-steps", {"steps": 30, "step_seconds": 0.1, "log": str(log)})
    first = _start(worker_env, tmp_path, "A")
    try:
        job = wait_for(
            lambda: (j := world.db.run(job_queue.get_job, job_id)).progress_done >= 3 and j,
            what="the first worker's progress",
        )
        assert (job.state, job.worker, job.attempts) == ("running", "A", 1)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        _stopped(first)
    killed_at = time.time()
    second = _start(worker_env, tmp_path, "B")
    try:
        job = wait_for(
            lambda: (j := world.db.run(job_queue.get_job, job_id)).state == "done" and j,
            timeout=40,
            what="the second worker to finish the job",
        )
    finally:
        _stopped(second)
    assert (job.worker, job.attempts, job.progress_done, job.progress_total) == ("B", 2, 30, 30)
    assert job.started_at is not None and job.started_at >= killed_at  # after the lease
    runs = _runs(log)
    starts = [r for r in runs if r[2] == "start"]
    assert [r[1] for r in starts] == ["1", "2"] and starts[0][3] == str(first.pid)
    assert starts[1][3] == str(second.pid)
    assert [r[3] for r in runs if r[2] == "end"] == [str(second.pid)]  # ran to its end once


def test_sigterm_gives_the_running_job_back(world, worker_env, enqueue, tmp_path):
    job_id = enqueue("test-steps", {"steps": 200, "step_seconds": 0.05})
    worker = _start(worker_env, tmp_path, "A")
    try:
        wait_for(lambda: world.db.run(job_queue.get_job, job_id).progress_done > 0, what="work")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        _stopped(worker)
    job = world.db.run(job_queue.get_job, job_id)
    assert (job.state, job.attempts, job.worker, job.lease_until) == ("queued", 0, None, None)


def test_worker_processes_claiming_at_once_run_each_job_once(world, worker_env, enqueue, tmp_path):
    log = tmp_path / "runs.log"
    # 6 s of work in all: longer than one worker takes to start after another on a busy
    # machine, so the first one up does not run every job before the others claim any
    ids = [enqueue("test-count", {"seconds": 0.2, "log": str(log)}) for _ in range(30)]
    workers = [_start(worker_env, tmp_path, f"w{n}", "--once") for n in range(3)]
    try:
        for w in workers:
            assert w.wait(60) == 0
    finally:
        for w in workers:
            _stopped(w)
    runs = Counter(int(r[0]) for r in _runs(log))
    assert runs == Counter({i: 1 for i in ids})
    jobs = world.db.run(job_queue.list_jobs, kinds=["test-count"])
    assert {j.state for j in jobs} == {"done"}
    assert len({j.worker for j in jobs}) >= 2


def test_the_supervisor_restarts_a_dying_worker_and_stops_it(world, worker_env, enqueue):
    supervisor = Supervisor(worker_command(), restart_seconds=0.1, env=worker_env).start()
    try:
        first = wait_for(lambda: supervisor.pid, what="a worker")
        job_id = enqueue("test-steps", {"steps": 2})
        wait_for(lambda: world.db.run(job_queue.get_job, job_id).state == "done", what="work")
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: supervisor.pid not in (None, first) and supervisor.pid)
        assert supervisor.restarts == 1
        job_id = enqueue("test-steps", {"steps": 2})
        job = wait_for(lambda: (j := world.db.run(job_queue.get_job, job_id)).ended and j)
        assert job.state == "done" and job.result is not None and job.result["pid"] == second
    finally:
        supervisor.stop()
    assert supervisor.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_serve_s_worker_follows_the_setting(job_settings, worker_env, monkeypatch):
    for name, value in worker_env.items():  # the worker inherits the test's environment
        monkeypatch.setenv(name, value)
    off = job_settings.model_copy(update={"run_worker": False})
    with supervised_worker(off) as supervisor:
        assert supervisor is None
    with supervised_worker(job_settings) as supervisor:
        assert supervisor is not None
        assert supervisor.command[-3:-1] == ["worker", "--exit-with-parent"]
        assert supervisor.command[-1] == str(os.getpid())
        wait_for(lambda: supervisor.pid, what="the worker to start")
    assert supervisor.pid is None


def test_a_worker_yields_the_cpu_by_its_nice_value(world, worker_env, enqueue, tmp_path):
    """Training and pre-labelling take whole cores: the worker runs below the server."""
    log = tmp_path / "runs.log"
    job_id = enqueue("test-steps", {"steps": 30, "step_seconds": 0.1, "log": str(log)})
    worker = _start({**worker_env, "LABELFARM_WORKER_NICE": "7"}, tmp_path, "N")
    try:
        wait_for(
            lambda: world.db.run(job_queue.get_job, job_id).progress_done >= 1,
            what="the worker's progress",
        )
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(19, os.nice(0) + 7)
    finally:
        _stopped(worker)

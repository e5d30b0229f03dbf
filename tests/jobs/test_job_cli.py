"""The CLI: ``labelfarm worker --once``, ``labelfarm jobs list|show|watch|cancel``."""

from __future__ import annotations

import threading

import orjson
import pytest
from typer.testing import CliRunner

from labelfarm.cli import app
from labelfarm.services import job_queue


@pytest.fixture
def env(worker_env, monkeypatch):
    for name, value in worker_env.items():
        if name.startswith("LABELFARM_"):
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize("command", [["worker"], ["jobs", "watch"], ["jobs", "list"]], ids=" ".join)
def test_the_job_commands_have_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_run_list_show_and_watch_jobs(world, env, enqueue):
    runner = CliRunner()
    done_id = enqueue("test-steps", {"steps": 4})
    failing_id = enqueue("test-flaky", {"fail_runs": 5}, max_attempts=1)
    r = runner.invoke(app, ["worker", "--once", "--import", "job_test_kinds"])
    assert r.exit_code == 0, r.output
    assert "ran 2 jobs" in r.output
    r = runner.invoke(app, ["jobs", "list"])
    assert r.exit_code == 0
    rows = {line.split()[1]: line for line in r.output.splitlines() if "test-" in line}
    assert "done" in rows[str(done_id)] and "failed" in rows[str(failing_id)]
    r = runner.invoke(app, ["jobs", "show", str(done_id)])
    shown = orjson.loads(r.stdout)
    assert (shown["state"], shown["progress_done"], shown["result"]["steps"]) == ("done", 4, 4)
    r = runner.invoke(app, ["jobs", "watch", str(done_id)])
    assert r.exit_code == 0 and f"job {done_id} done" in r.output
    assert orjson.loads(r.stdout.strip().splitlines()[-1])["steps"] == 4
    r = runner.invoke(app, ["jobs", "watch", str(failing_id)])
    assert r.exit_code == 1 and "failed: RuntimeError: run 1 broke" in r.output
    r = runner.invoke(app, ["jobs", "show", "999"])
    assert r.exit_code == 1 and "no such job" in r.output


def test_watch_follows_a_running_job_and_cancel_stops_it(world, env, enqueue, make_worker):
    runner = CliRunner()
    job_id = enqueue("test-steps", {"steps": 400, "step_seconds": 0.02})
    worker = threading.Thread(target=make_worker().run_one)
    worker.start()
    try:

        def cancel_soon() -> None:
            while world.db.run(job_queue.get_job, job_id).progress_done == 0:
                threading.Event().wait(0.05)
            assert runner.invoke(app, ["jobs", "cancel", str(job_id)]).exit_code == 0

        canceller = threading.Thread(target=cancel_soon)
        canceller.start()
        r = runner.invoke(app, ["jobs", "watch", str(job_id)])
        canceller.join(20)
    finally:
        worker.join(20)
    assert r.exit_code == 1 and f"job {job_id} cancelled" in r.output
    assert world.db.run(job_queue.get_job, job_id).state == "cancelled"

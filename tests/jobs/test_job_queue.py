"""The job queue in-process, on each database: claims under concurrency, retries with
back-off, final failure, cancelling, a lost lease taken up by another worker, progress."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from job_helpers import wait_for
from job_test_kinds import RUNS

from labelfarm.db.engine import Database
from labelfarm.errors import InvalidInput
from labelfarm.jobs.kinds import get_kind, kind_names
from labelfarm.jobs.worker import Worker
from labelfarm.services import job_claims, job_queue
from labelfarm.services.job_claims import Claim


def test_enqueue_get_and_list(world, enqueue):
    ws = world.workspace()
    project = world.project(ws)
    first = enqueue("test-steps", {"steps": 2}, project_id=project.id, workspace_id=ws["id"])
    second = enqueue("test-flaky", project_id=project.id, max_attempts=5)
    enqueue("test-steps")  # of no project
    job = world.db.run(job_queue.get_job, first)
    assert (job.kind, job.state, job.params, job.attempts, job.max_attempts) == (
        "test-steps", "queued", {"steps": 2}, 0, 3
    )  # fmt: skip
    listed = world.db.run(job_queue.list_jobs, project_id=project.id)
    assert [j.id for j in listed] == [second, first]  # newest first
    assert [j.id for j in world.db.run(job_queue.list_jobs, kinds=["test-flaky"])] == [second]
    assert world.db.run(job_queue.list_jobs, states=["done"]) == []
    shown = job.to_dict()
    assert shown["created_at"].endswith("+00:00") and shown["fraction"] is None
    with pytest.raises(Exception, match="no such job"):
        world.db.run(job_queue.get_job, 999)


def test_unknown_kinds_are_refused_with_the_valid_names():
    with pytest.raises(InvalidInput) as caught:
        get_kind("tran")
    assert "refit" in caught.value.message and "refit" in kind_names()


def test_no_job_runs_twice_when_workers_claim_at_once(world, job_settings, enqueue):
    """Six workers, each with its own connections as separate processes would have, take 40
    jobs at once: each job runs exactly once."""
    RUNS.clear()
    ids = {enqueue("test-count", {"seconds": 0.01}) for _ in range(40)}
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        db = Database(job_settings.database_url)
        try:
            worker = Worker(job_settings, db, world.ctx.media, name=f"w{n}")
            start.wait()
            worker.run_until_idle()
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = Counter(job_id for job_id, _ in RUNS if job_id in ids)
    assert runs == Counter({i: 1 for i in ids})
    jobs = world.db.run(job_queue.list_jobs, kinds=["test-count"], limit=100)
    assert {j.state for j in jobs} == {"done"} and {j.attempts for j in jobs} == {1}
    assert len({j.worker for j in jobs}) >= 2  # the work was shared


def test_a_failing_job_is_retried_with_back_off_then_succeeds(world, make_worker, enqueue, clock):
    job_id = enqueue("test-flaky", {"fail_runs": 2}, max_attempts=3)
    worker = make_worker(clock=clock)
    job = worker.run_one()
    assert job is not None and (job.state, job.attempts) == ("queued", 1)
    assert job.error == "RuntimeError: run 1 broke" and job.run_after == clock() + 10
    assert worker.run_one() is None  # not due before its back-off
    clock.advance(10)
    job = worker.run_one()
    assert job is not None and (job.state, job.attempts) == ("queued", 2)
    assert job.run_after == clock() + 20  # the back-off doubles
    clock.advance(19)
    assert worker.run_one() is None
    clock.advance(1)
    job = worker.run_one()
    assert job is not None and (job.state, job.attempts, job.result) == ("done", 3, {"run": 3})
    assert job.error is None and job.id == job_id


def test_a_job_fails_for_good_after_its_attempts(world, make_worker, enqueue, clock):
    job_id = enqueue("test-flaky", {"fail_runs": 9}, max_attempts=2)
    worker = make_worker(clock=clock)
    worker.run_one()
    clock.advance(10)
    job = worker.run_one()
    assert job is not None and (job.id, job.state, job.attempts) == (job_id, "failed", 2)
    assert job.error == "RuntimeError: run 2 broke"  # the message, no traceback
    assert job.finished_at == clock()
    clock.advance(1000)
    assert worker.run_one() is None


def test_bad_parameters_fail_at_once(world, make_worker, enqueue):
    enqueue("no-such-kind")
    job = make_worker().run_one()
    assert job is not None and (job.state, job.attempts) == ("failed", 1)
    assert job.error is not None and "unknown job kind 'no-such-kind'" in job.error


def test_a_result_that_is_not_json_fails_the_job(world, make_worker, enqueue):
    enqueue("test-bad-result")
    job = make_worker().run_one()
    assert job is not None and (job.state, job.attempts) == ("failed", 1)
    assert job.error is not None and "not JSON" in job.error


def test_cancelling_a_queued_job_is_at_once(world, make_worker, enqueue):
    job_id = enqueue("test-steps")
    job = world.db.run(job_queue.request_cancel, job_id, now=time.time())
    assert job.state == "cancelled" and job.finished_at is not None
    assert make_worker().run_one() is None


def test_cancelling_a_running_job_stops_it(world, make_worker, enqueue):
    job_id = enqueue("test-steps", {"steps": 200, "step_seconds": 0.05})
    ended: list = []
    runner = threading.Thread(target=lambda: ended.append(make_worker().run_one()))
    runner.start()
    wait_for(lambda: world.db.run(job_queue.get_job, job_id).progress_done > 0, what="progress")
    asked = world.db.run(job_queue.request_cancel, job_id, now=time.time())
    assert asked.state == "running" and asked.cancel_requested
    runner.join(10)
    assert ended and ended[0].state == "cancelled"
    job = world.db.run(job_queue.get_job, job_id)
    assert job.state == "cancelled" and 0 < job.progress_done < 200


def test_a_job_whose_lease_ran_out_is_finished_by_another_worker(
    world, make_worker, enqueue, clock
):
    """A worker claims and then dies (no heartbeat): after the lease another worker claims
    the job and finishes it; the first worker's late writes change nothing."""
    job_id = enqueue("test-steps", {"steps": 3})
    dead = world.db.run(job_claims.claim_next, worker="dead", now=clock(), lease_seconds=2)
    assert dead is not None and (dead.id, dead.state, dead.worker) == (job_id, "running", "dead")
    other = make_worker("w2", clock=clock)
    assert other.run_one() is None  # its lease still holds
    clock.advance(2.5)
    job = other.run_one()
    assert job is not None and (job.state, job.worker, job.attempts) == ("done", "w2", 2)
    stale = Claim(job_id, "dead", 1)
    beat = world.db.run(job_claims.heartbeat, stale, now=clock(), lease_seconds=2)
    assert not beat.owned
    late = world.db.run(
        job_claims.finish_done, stale, result={"x": 1}, done=1, total=1, message="", now=clock()
    )
    assert late is None
    after = world.db.run(job_queue.get_job, job_id)
    assert (after.state, after.worker, after.result) == (
        "done",
        "w2",
        {"steps": 3, "pid": job.result["pid"]},
    )


def test_an_abandoned_job_out_of_attempts_fails(world, make_worker, enqueue, clock):
    job_id = enqueue("test-steps", max_attempts=1)
    world.db.run(job_claims.claim_next, worker="dead", now=clock(), lease_seconds=2)
    clock.advance(3)
    assert make_worker(clock=clock).run_one() is None
    job = world.db.run(job_queue.get_job, job_id)
    assert (job.state, job.error) == ("failed", job_claims.LOST_MESSAGE)


def test_a_worker_that_lost_its_claim_is_told_to_stop(world, make_worker, enqueue):
    """The heartbeat finds the row taken over: the job's next progress raises and the first
    worker leaves the row to the new owner."""
    job_id = enqueue("test-steps", {"steps": 400, "step_seconds": 0.02})
    ended: list = []
    runner = threading.Thread(target=lambda: ended.append(make_worker("slow").run_one()))
    runner.start()
    wait_for(lambda: world.db.run(job_queue.get_job, job_id).progress_done > 0, what="progress")
    later = time.time() + 60  # as if the lease had run out: another worker claims it
    taken = world.db.run(job_claims.claim_next, worker="thief", now=later, lease_seconds=600)
    assert taken is not None and taken.worker == "thief"
    runner.join(10)
    assert not runner.is_alive()
    job = world.db.run(job_queue.get_job, job_id)
    assert (job.state, job.worker, job.attempts) == ("running", "thief", 2)
    assert ended and ended[0].worker == "thief"


def test_a_stopping_worker_gives_its_job_back(world, make_worker, enqueue):
    job_id = enqueue("test-steps", {"steps": 400, "step_seconds": 0.02})
    stop = threading.Event()
    ended: list = []
    runner = threading.Thread(target=lambda: ended.append(make_worker().run_one(stop)))
    runner.start()
    wait_for(lambda: world.db.run(job_queue.get_job, job_id).progress_done > 0, what="progress")
    stop.set()
    runner.join(10)
    job = world.db.run(job_queue.get_job, job_id)
    assert (job.state, job.attempts, job.worker) == ("queued", 0, None)
    again = world.db.run(job_claims.claim_next, worker="w2", now=time.time(), lease_seconds=2)
    assert again is not None and (again.id, again.attempts) == (job_id, 1)  # due at once


def test_progress_is_kept_and_completed(world, make_worker, enqueue):
    job_id = enqueue("test-steps", {"steps": 5})
    job = make_worker().run_one()
    assert job is not None and job.id == job_id
    assert (job.progress_done, job.progress_total, job.message) == (5, 5, "step 5 of 5")
    assert job.to_dict()["fraction"] == 1.0

"""The jobs API: a project's jobs and their progress while they run, cancelling, who may do
what; and the refit kind that replaced the server's own refit loop."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from job_helpers import wait_for
from sqlalchemy import text

from labelfarm.jobs import refit
from labelfarm.services import job_queue

# what else a refit does, with nothing to do for it here: ASR measured per project, auto-accept
# thresholds withdrawn, new versions queued every N labels, correction rounds closed
NOTHING_ELSE = {
    "asr_measured": {},
    "auto_accept_withdrawn": {},
    "retrain_queued": {},
    "rounds_closed": [],
}


def _http(world: Any, token: str) -> httpx.Client:
    return httpx.Client(
        transport=world.transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_progress_is_visible_through_the_api_while_a_job_runs(world, make_worker, enqueue):
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws)
    job_id = enqueue(
        "test-steps",
        {"steps": 40, "step_seconds": 0.05},
        project_id=project.id,
        workspace_id=ws["id"],
    )
    api = _http(world, manager["token"])
    queued = api.get(f"/api/v1/jobs/{job_id}").json()
    assert (queued["state"], queued["progress_done"], queued["fraction"]) == ("queued", 0, None)
    runner = threading.Thread(target=make_worker().run_one)
    runner.start()
    try:
        seen = wait_for(
            lambda: (j := api.get(f"/api/v1/jobs/{job_id}").json())["progress_done"] > 0 and j,
            what="progress through the API",
        )
        assert seen["state"] == "running" and seen["progress_total"] == 40
        assert 0 < seen["fraction"] < 1 and seen["message"].startswith("step ")
        listed = api.get(f"/api/v1/projects/{project.id}/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
    finally:
        runner.join(30)
    done = api.get(f"/api/v1/jobs/{job_id}").json()
    assert (done["state"], done["progress_done"], done["fraction"]) == ("done", 40, 1.0)
    assert done["result"]["steps"] == 40
    only_running = api.get(f"/api/v1/projects/{project.id}/jobs?state=running").json()["jobs"]
    assert only_running == []


def test_cancelling_through_the_api(world, enqueue):
    ws = world.workspace()
    manager = world.user("boss", role="manager", workspace=ws)
    project = world.project(ws)
    job_id = enqueue("test-steps", project_id=project.id, workspace_id=ws["id"])
    answer = _http(world, manager["token"]).post(f"/api/v1/jobs/{job_id}/cancel")
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    again = _http(world, manager["token"]).post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.json()["state"] == "cancelled"  # an ended job stays as it is


def test_who_may_see_and_cancel_jobs(world, enqueue):
    ws, other = world.workspace("home"), world.workspace("other")
    people = {
        role: world.user(f"u-{role}", role=role, workspace=ws)
        for role in ("admin", "manager", "reviewer", "annotator", "client")
    }
    stranger = world.user("stranger", role="admin", workspace=other)
    root = world.user("root", superuser=True)
    project = world.project(ws)
    of_project = enqueue("test-steps", project_id=project.id, workspace_id=ws["id"])
    of_workspace = enqueue("test-steps", workspace_id=ws["id"])
    of_instance = enqueue("test-steps")

    def status(who: dict, url: str) -> int:
        return _http(world, who["token"]).get(url).status_code

    for role, who in people.items():
        allowed = role in ("admin", "manager")
        assert status(who, f"/api/v1/jobs/{of_project}") == (200 if allowed else 403), role
        assert status(who, f"/api/v1/projects/{project.id}/jobs") == (200 if allowed else 403)
        assert status(who, f"/api/v1/jobs/{of_workspace}") == (200 if role == "admin" else 403)
        assert status(who, f"/api/v1/jobs/{of_instance}") == 403
        cancel = _http(world, who["token"]).post(f"/api/v1/jobs/{of_instance}/cancel")
        assert cancel.status_code == 403
    assert status(stranger, f"/api/v1/jobs/{of_project}") == 404
    assert status(stranger, f"/api/v1/jobs/{of_workspace}") == 404
    assert status(stranger, f"/api/v1/projects/{project.id}/jobs") == 404
    assert status(root, f"/api/v1/jobs/{of_instance}") == 200
    assert status(root, "/api/v1/jobs/999") == 404
    assert world.db.run(job_queue.get_job, of_instance).state == "queued"


def _labelled_adaptive_project(world: Any, tmp_path: Any) -> Any:
    ws = world.workspace()
    project = world.project(ws, overlap=1, max_overlap=3, target_confidence=0.99)
    world.add_items(project, 6, tmp_path)
    for name in ("ann1", "ann2"):
        client = world.user(name, role="annotator", workspace=ws)["client"]
        tasks = client.next(project.id, n=6)
        client.submit(project.id, [{"task": t["task"], "value": {"label": "a"}} for t in tasks])
    return project


def test_the_refit_kind_refits_the_projects_due(world, make_worker, tmp_path, clock):
    project = _labelled_adaptive_project(world, tmp_path)
    clock.advance(1)
    job_id = refit.schedule(world.db, now=clock(), every=300)
    assert job_id is not None
    assert refit.schedule(world.db, now=clock(), every=300) is None  # one at a time
    job = make_worker(clock=clock).run_one()
    assert job is not None and job.id == job_id
    assert (job.state, job.result, job.project_id) == (
        "done",
        {"projects": [project.id], **NOTHING_ELSE},
        None,
    )
    with world.db.begin("read") as tx:
        fitted = tx.execute(text("SELECT COUNT(*) FROM annotator_models")).scalar()
        audited = tx.execute(
            text("SELECT COUNT(*) FROM audit_log WHERE action = 'quality.refit'")
        ).scalar()
    assert fitted == 1 and audited == 1
    assert refit.schedule(world.db, now=clock(), every=300) is not None  # the last one ended
    again = make_worker(clock=clock).run_one()
    assert again is not None and again.result == {"projects": [], **NOTHING_ELSE}  # fitted since


def test_a_running_worker_schedules_the_refit(world, job_settings, tmp_path):
    from labelfarm.jobs.worker import Worker

    project = _labelled_adaptive_project(world, tmp_path)
    settings = job_settings.model_copy(update={"refit_seconds": 3600.0})
    worker = Worker(settings, world.db, world.ctx.media, name="w1")
    stop = threading.Event()
    runner = threading.Thread(target=worker.run_forever, args=(stop,))
    runner.start()
    try:
        job = wait_for(
            lambda: [j for j in world.db.run(job_queue.list_jobs, kinds=["refit"]) if j.ended],
            what="a refit job",
        )[0]
    finally:
        stop.set()
        runner.join(10)
    assert job.state == "done" and job.result == {"projects": [project.id], **NOTHING_ELSE}
    assert len(world.db.run(job_queue.list_jobs, kinds=["refit"])) == 1  # once an hour
    assert time.time() - job.created_at < 60

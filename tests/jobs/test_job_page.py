"""The jobs page, rendered on the server: the project's jobs newest first with their state,
progress and error, kinds named in the reader's language; managers only; linked from the
project page."""

from __future__ import annotations

import re
import time

import httpx

from labelfarm.services import job_claims, job_queue

HTML = {"accept": "text/html"}


def _browser(world, who) -> httpx.Client:
    return httpx.Client(
        transport=world.transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {who['token']}", **HTML},
    )


def _page_world(world, enqueue):
    ws = world.workspace()
    people = {r: world.user(f"u-{r}", role=r, workspace=ws) for r in ("manager", "annotator")}
    project = world.project(ws)
    on = {"project_id": project.id, "workspace_id": ws["id"]}
    failed = enqueue("test-flaky", max_attempts=1, **on)
    running = enqueue("train", {"predictor": "x"}, **on)
    queued = enqueue("refit", **on)
    enqueue("test-steps")  # another project's (here: none) is not listed
    now = time.time()
    claim = world.db.run(job_claims.claim_next, worker="w", now=now, lease_seconds=60)
    assert claim is not None and claim.id == failed
    world.db.run(
        job_claims.finish_failed,
        job_claims.Claim(failed, "w", 1),
        error="RuntimeError: the disk is full",
        now=now,
        retry_seconds=1,
    )
    claim = world.db.run(job_claims.claim_next, worker="w", now=now, lease_seconds=60)
    assert claim is not None and claim.id == running
    world.db.run(
        job_claims.report_progress,
        job_claims.Claim(running, "w", 1),
        done=30,
        total=120,
        message="fitting",
        now=now,
    )
    return people, project, (failed, running, queued)


def test_the_jobs_page_lists_the_project_s_jobs(world, enqueue):
    people, project, (failed, running, queued) = _page_world(world, enqueue)
    manager = _browser(world, people["manager"])
    html = manager.get(f"/projects/{project.id}/jobs").text
    rows = re.findall(r'<tr class="job" data-job="(\d+)" data-state="(\w+)"', html)
    assert rows == [(str(queued), "queued"), (str(running), "running"), (str(failed), "failed")]
    assert '<progress max="120" value="30">' in html and "30 of 120" in html
    assert "RuntimeError: the disk is full" in html
    assert "Training" in html and "Refitting annotator models" in html and "test-flaky" in html
    assert html.count("data-cancel=") == 2  # the open jobs
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert "js/pages/jobs.js" in html
    tamil = manager.get(f"/projects/{project.id}/jobs?lang=ta").text
    assert "பயிற்சி" in tamil and "வரிசையில்" in tamil
    assert world.db.run(job_queue.get_job, running).state == "running"


def test_the_jobs_page_is_for_managers_and_linked_from_the_project(world, enqueue):
    people, project, _ = _page_world(world, enqueue)
    path = f"/projects/{project.id}/jobs"
    assert _browser(world, people["annotator"]).get(path).status_code == 403
    manager = _browser(world, people["manager"])
    assert f'href="{path}"' in manager.get(f"/projects/{project.id}").text

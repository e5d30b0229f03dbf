"""An annotator's own progress: ``GET /api/v1/projects/{id}/progress/me``."""

from __future__ import annotations

import uuid

from labelfarm.jsonutil import iso


def _submit(client, project_id: int, tasks: list[dict]) -> None:
    client.submit(
        project_id,
        [{"id": uuid.uuid4().hex, "task": t["task"], "value": {"label": "a"}} for t in tasks],
    )


def test_counts_own_labels_since_a_time_and_in_all(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws, overlap=2, lease_seconds=86400)
    world.add_items(project, 6, tmp_path)
    ann = world.user("ann", role="annotator", workspace=ws)
    bob = world.user("bob", role="annotator", workspace=ws)
    path = f"/projects/{project.id}/progress/me"
    assert ann["client"].request("GET", path) == {"total": 0, "since": 0}

    tasks = ann["client"].next(project.id, n=4)
    _submit(ann["client"], project.id, tasks[:2])
    world.clock.advance(3600)
    midnight = iso(world.clock() - 60)  # "today" began a minute ago
    _submit(ann["client"], project.id, tasks[2:3])
    _submit(bob["client"], project.id, bob["client"].next(project.id, n=1))
    # a skipped task and a live lease are not labels
    ann["client"].skip(project.id, tasks[3]["task"], "unclear")

    mine = ann["client"].request("GET", path, params={"since": midnight})
    assert mine == {"total": 3, "since": 1}
    assert bob["client"].request("GET", path, params={"since": midnight}) == {
        "total": 1,
        "since": 1,
    }


def test_a_bad_time_is_refused_with_its_name(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws)
    ann = world.user("ann", role="annotator", workspace=ws)
    http = ann["client"]._http
    r = http.get(f"/api/v1/projects/{project.id}/progress/me", params={"since": "yesterday"})
    assert r.status_code == 422
    assert "since" in r.text

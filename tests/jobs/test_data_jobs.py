"""Import and export jobs: the same items and files as the synchronous routes, all or
nothing, cancellable, safe to run again, with their files cleaned up."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from labelfarm.client import AppTransport, Client, LabelfarmAPIError
from labelfarm.formats.registry import ImportInterrupted
from labelfarm.services import job_files, job_queue
from labelfarm.services.import_resume import find_import
from labelfarm.services.imports import import_items, recover_imports
from labelfarm.web.app import create_app

TEXT_SCHEMA = {
    "data": {"text": "text", "stars": "number"},
    "fields": [{"name": "label", "type": "choice", "options": ["pos", "neg"]}],
}
GOOD = b"".join(b'{"data": {"text": "row %d", "stars": %d}}\n' % (i, i % 5) for i in range(40))
_LINES = GOOD.splitlines(keepends=True)
BAD = b"".join(_LINES[:5]) + b'{"data": {"text": 5}}\n' + b"".join(_LINES[5:]) + b'{"data": {\n'


@pytest.fixture
def boss(world) -> dict[str, Any]:
    ws = world.workspace()
    user = world.user("boss", role="manager", workspace=ws)
    return {**user, "ws": ws, "project": world.project(ws, schema=TEXT_SCHEMA)}


@pytest.fixture
def worker(make_worker, world):
    return make_worker(clock=world.clock)


def start_import(client: Client, project_id: int, content: bytes, **params: Any) -> dict:
    answer = client.request(
        "POST",
        f"/projects/{project_id}/imports/jobs",
        params={"filename": "rows.jsonl", **params},
        content=content,
    )
    return answer["job"]


def import_job(client: Client, project_id: int, job_id: int) -> dict:
    return client.request("GET", f"/projects/{project_id}/imports/jobs/{job_id}")


def items_of(world, project_id: int) -> list[tuple]:
    with world.db.begin("read") as tx:
        rows = tx.execute(
            text("SELECT external_id, data, status FROM items WHERE project_id = :p ORDER BY id"),
            {"p": project_id},
        ).all()
    return [tuple(r) for r in rows]


def counted(world, project_id: int) -> int:
    """The project's item counter."""
    with world.db.begin("read") as tx:
        q = text("SELECT n_items FROM projects WHERE id = :p")
        return int(tx.execute(q, {"p": project_id}).scalar_one())


def uploads(settings) -> list[Path]:
    folder = settings.data_dir / job_files.UPLOADS
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_an_import_job_imports_what_the_synchronous_import_does(world, boss, worker, settings):
    client, project = boss["client"], boss["project"]
    twin = world.project(boss["ws"], schema=TEXT_SCHEMA, name="twin")
    sync = client.import_bytes(twin.id, GOOD, format="jsonl", filename="rows.jsonl")
    job = start_import(client, project.id, GOOD, format="jsonl")
    assert job["state"] == "queued" and job["kind"] == "import"
    assert len(uploads(settings)) == 1  # stored, waiting for the worker
    assert import_job(client, project.id, job["id"])["import"] is None
    [ran] = worker.run_until_idle()
    assert ran.state == "done", ran.error
    assert ran.result is not None and ran.result["n_items"] == sync["n_items"] == 40
    assert ran.progress_total and ran.progress_done == ran.progress_total
    assert "40 rows read" in ran.message
    assert [r[1:] for r in items_of(world, project.id)] == [r[1:] for r in items_of(world, twin.id)]
    answer = import_job(client, project.id, job["id"])
    assert answer["job"]["state"] == "done"
    assert answer["import"]["status"] == "done" and answer["import"]["n_items"] == 40
    assert answer["import"]["filename"] == "rows.jsonl"
    assert uploads(settings) == []  # the upload went with its job
    assert counted(world, project.id) == 40


def test_the_format_is_told_from_the_upload(world, boss, worker):
    client, project = boss["client"], boss["project"]
    csv = b"text,stars\nhello,3\nbye,1\n"
    job = start_import(client, project.id, csv, filename="rows.csv")
    assert job["params"]["format"] == "csv"
    [ran] = worker.run_until_idle()
    assert ran.state == "done" and ran.result["n_items"] == 2


def test_a_bad_file_fails_the_job_with_its_located_rows_and_leaves_nothing(
    world, boss, worker, settings
):
    client, project = boss["client"], boss["project"]
    before = items_of(world, project.id)
    job = start_import(client, project.id, BAD, format="jsonl")
    [ran] = worker.run_until_idle()
    assert ran.state == "failed" and ran.attempts == 1  # the file's fault: not run again
    record = import_job(client, project.id, job["id"])["import"]
    with pytest.raises(LabelfarmAPIError) as sync:  # what the synchronous import says
        client.import_bytes(project.id, BAD, format="jsonl", filename="other.jsonl")
    assert ran.error == sync.value.message.replace("other.jsonl", "rows.jsonl")
    assert record["status"] == "failed" and record["n_errors"] == len(sync.value.details)
    assert record["errors"] == sync.value.details
    locations = [e["location"] for e in record["errors"]]
    assert locations[0].endswith("line 6") and locations[-1].endswith("line 42"), locations
    assert items_of(world, project.id) == before == []
    assert uploads(settings) == []


def test_a_cancelled_import_leaves_nothing(world, boss, worker, settings):
    client, project = boss["client"], boss["project"]
    many = b"".join(b'{"data": {"text": "r%d", "stars": 1}}\n' % i for i in range(100_000))
    job = start_import(client, project.id, many, format="jsonl")
    ended: list[Any] = []
    thread = threading.Thread(target=lambda: ended.append(worker.run_one()))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while world.db.run(job_queue.get_job, job["id"]).progress_done == 0:
            assert time.monotonic() < deadline, "the import never reported progress"
            time.sleep(0.01)
        client.request("POST", f"/jobs/{job['id']}/cancel")
    finally:
        thread.join(60)
    assert ended[0].state == "cancelled", ended[0]
    assert items_of(world, project.id) == []
    assert counted(world, project.id) == 0
    record = import_job(client, project.id, job["id"])["import"]
    assert record["status"] == "failed"
    assert uploads(settings) == []


def _crashed_run(world, project, job: dict, content: bytes, tmp_path: Path, stop_early: bool):
    """What a run of the import job that died left: its import done, or stopped half way
    (its rows staged: SQLite; rolled back: PostgreSQL)."""
    path = tmp_path / "same.jsonl"
    path.write_bytes(content)
    stop = threading.Event()

    def on_progress(rows: int, done: int, total: int) -> None:
        if stop_early and rows >= 400:
            stop.set()

    kwargs = dict(
        media=world.ctx.media,
        now=job["_created_at"],
        user_id=job["created_by"],
        job_id=job["id"],
        filename="rows.jsonl",
        batch_rows=100,
        on_progress=on_progress,
        progress_rows=100,
        cancel=stop,
    )
    if stop_early:
        with pytest.raises(ImportInterrupted):
            world.db.run(import_items, project, path, "jsonl", **kwargs)
    else:
        world.db.run(import_items, project, path, "jsonl", **kwargs)


@pytest.mark.parametrize("stop_early", [False, True], ids=["after-publish", "half-staged"])
def test_a_run_after_a_crash_never_imports_twice(
    world, boss, worker, settings, tmp_path, stop_early
):
    client, project = boss["client"], boss["project"]
    many = b"".join(b'{"data": {"text": "r%d", "stars": 1}}\n' % i for i in range(1000))
    job = start_import(client, project.id, many, format="jsonl")
    row = world.db.run(job_queue.get_job, job["id"])
    _crashed_run(world, project, {**job, "_created_at": row.created_at}, many, tmp_path, stop_early)
    [ran] = worker.run_until_idle()
    assert ran.state == "done", ran.error
    assert ran.result["n_items"] == 1000
    rows = items_of(world, project.id)
    assert len(rows) == 1000 and {r[2] for r in rows} == {"ready"}
    assert counted(world, project.id) == 1000
    statuses = [
        i["status"] for i in client.request("GET", f"/projects/{project.id}/imports")["imports"]
    ]
    assert statuses.count("done") == 1


@pytest.mark.parametrize("job_state", ["running", "failed"])
def test_recovery_at_start_leaves_an_import_its_live_job_is_writing(
    world, boss, worker, settings, tmp_path, job_state
):
    """A server starting (recover_imports) while a worker stages an import must not roll
    it back under the worker; an import whose job ended for good is recovered."""
    client, project = boss["client"], boss["project"]
    many = b"".join(b'{"data": {"text": "s%d", "stars": 1}}\n' % i for i in range(1000))
    job = start_import(client, project.id, many, format="jsonl")
    row = world.db.run(job_queue.get_job, job["id"])
    _crashed_run(world, project, {**job, "_created_at": row.created_at}, many, tmp_path, True)
    with world.db.engine.begin() as conn:
        conn.execute(
            text("UPDATE jobs SET state = :s WHERE id = :j"), {"s": job_state, "j": job["id"]}
        )
        # as a worker leaves it mid-file (on PostgreSQL the stopped run gave up its rows)
        conn.execute(
            text("UPDATE imports SET status = 'staging' WHERE job_id = :j"), {"j": job["id"]}
        )
    recover_imports(world.db, world.clock())
    found = world.db.run(find_import, project.id, job["id"])
    assert found is not None
    assert found.status == ("staging" if job_state == "running" else "failed")


def test_an_upload_as_a_job_is_bounded_like_any_upload(world, boss, settings, clock):
    tight = settings.model_copy(update={"max_upload_bytes": 1000})
    app = create_app(tight, clock=clock, run_migrations=False)
    transport = AppTransport(app)
    try:
        client = Client("http://t", token=boss["token"], transport=transport)
        with pytest.raises(LabelfarmAPIError) as err:
            start_import(client, boss["project"].id, GOOD * 3, format="jsonl")
        assert err.value.status == 413
        job = start_import(client, boss["project"].id, GOOD[:900], format="jsonl")
        assert job["state"] == "queued"
    finally:
        transport.close()
        app.state.ctx.db.dispose()
    jobs = world.db.run(job_queue.list_jobs, kinds=["import"])
    assert [j.id for j in jobs] == [job["id"]]  # the refused upload queued nothing
    assert [p.name for p in uploads(settings)] == [job["params"]["upload"]]


def test_an_upload_of_a_job_cancelled_while_queued_is_swept(world, boss, worker, settings):
    client, project = boss["client"], boss["project"]
    job = start_import(client, project.id, GOOD, format="jsonl")
    client.request("POST", f"/jobs/{job['id']}/cancel")
    assert len(uploads(settings)) == 1
    assert job_files.sweep(world.db, settings) == 1
    assert uploads(settings) == []


def _annotate(world, project, ws, n: int) -> None:
    annotator = world.user("ann", role="annotator", workspace=ws)
    tasks = annotator["client"].next(project.id, n=n)
    entries = [{"task": t["task"], "value": {"label": "pos"}} for t in tasks]
    annotator["client"].submit(project.id, entries)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "coco"])
def test_an_export_job_writes_what_the_synchronous_export_answers(
    world, boss, worker, settings, tmp_path, fmt
):
    client, project = boss["client"], boss["project"]
    client.import_bytes(project.id, GOOD, format="jsonl")
    _annotate(world, project, boss["ws"], 5)
    sync = b"".join(client.export_stream(project.id, format=fmt))
    job = client.request("POST", f"/projects/{project.id}/exports", json={"format": fmt})["job"]
    assert job["state"] == "queued"
    pending = client.request("GET", f"/projects/{project.id}/exports/{job['id']}")
    assert pending["download"] is None
    [ran] = worker.run_until_idle()
    assert ran.state == "done", ran.error
    assert ran.result["items"] == 40 and ran.progress_done == ran.progress_total == 40
    answer = client.request("GET", f"/projects/{project.id}/exports/{job['id']}")
    assert answer["download"] == f"/api/v1/projects/{project.id}/exports/{job['id']}/file"
    got = client._http.get(answer["download"])
    assert got.status_code == 200
    assert got.content == sync
    assert f'filename="project-{project.id}.' in got.headers["content-disposition"]


def test_who_sees_and_downloads_export_jobs(world, boss, worker):
    client, project = boss["client"], boss["project"]
    client.import_bytes(project.id, GOOD, format="jsonl")
    buyer = world.user("buyer", role="client", workspace=boss["ws"])
    with pytest.raises(LabelfarmAPIError) as err:  # identities are for managers
        buyer["client"].request(
            "POST", f"/projects/{project.id}/exports", json={"completed_by": {"boss": 1}}
        )
    assert err.value.status == 403
    theirs = buyer["client"].request("POST", f"/projects/{project.id}/exports", json={})["job"]
    mine = client.request("POST", f"/projects/{project.id}/exports", json={"format": "csv"})["job"]
    worker.run_until_idle()
    listed = buyer["client"].request("GET", f"/projects/{project.id}/exports")["exports"]
    assert [e["job"]["id"] for e in listed] == [theirs["id"]]
    with pytest.raises(LabelfarmAPIError) as err:
        buyer["client"].request("GET", f"/projects/{project.id}/exports/{mine['id']}")
    assert err.value.status == 404
    assert (
        buyer["client"]
        ._http.get(f"/api/v1/projects/{project.id}/exports/{mine['id']}/file")
        .status_code
        == 404
    )
    managers = client.request("GET", f"/projects/{project.id}/exports")["exports"]
    assert {e["job"]["id"] for e in managers} == {theirs["id"], mine["id"]}
    with pytest.raises(LabelfarmAPIError) as err:
        client.request("POST", f"/projects/{project.id}/exports", json={"format": "nope"})
    assert err.value.status == 422


def test_an_expired_export_is_swept_and_no_longer_served(world, boss, worker, settings):
    client, project = boss["client"], boss["project"]
    client.import_bytes(project.id, GOOD, format="jsonl")
    job = client.request("POST", f"/projects/{project.id}/exports", json={})["job"]
    worker.run_until_idle()
    path = job_files.export_path(settings, project.id, job["id"], "jsonl")
    assert path.is_file()
    later = time.time() + settings.export_keep_hours * 3600 + 1
    assert job_files.sweep(world.db, settings, now=later) == 1
    assert not path.exists()
    answer = client.request("GET", f"/projects/{project.id}/exports/{job['id']}")
    assert answer["download"] is None


def test_the_report_of_an_import_job_says_what_was_left_out(world, boss, worker):
    project = world.project(
        boss["ws"],
        schema={"fields": [{"name": "label", "type": "choice", "options": ["x"]}]},
        name="ls",
    )
    tasks = [
        {"id": 1, "data": {"text": "a"}, "predictions": [41, 42]},
        {"id": 2, "data": {"text": "b"}, "predictions": [43]},
    ]
    content = orjson.dumps(tasks)
    job = start_import(boss["client"], project.id, content, filename="export.json")
    assert job["params"]["format"] == "labelstudio"
    [ran] = worker.run_until_idle()
    assert ran.state == "done", ran.error
    [note] = [n for n in ran.result["notes"] if "by id" in n["reason"]]
    assert note["count"] == 3
    record = import_job(boss["client"], project.id, job["id"])["import"]
    assert record["notes"] == ran.result["notes"]

"""The import page and the project page's exports run as jobs: a real Chromium against a
real server whose worker is off, so that the test runs the jobs itself (in process, on the
same data directory) and sees the pages show a job waiting, then its outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from lf_browser import Server, login, wait_js
from lf_world import World, build_world

from labelfarm.db.engine import Database
from labelfarm.jobs.worker import Worker
from labelfarm.services import audit
from labelfarm.services.media import MediaStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("import-jobs") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LABELFARM_RUN_WORKER", "false")
        srv = Server(build_world(data_dir, n_images=1, n_choice=2), data_dir)
    yield srv
    srv.stop()


def run_jobs(world: World) -> list[Any]:
    """Run the queued jobs to their end, as the server's worker would."""
    s = world.settings
    db = Database(s.resolved_database_url)
    audit.use_key(db, s.resolved_audit_key)
    try:
        media = MediaStore(s.resolved_media_root, s.resolved_secret_key)
        return Worker(s, db, media, name="browser-test").run_until_idle()
    finally:
        db.dispose()


def test_an_upload_is_imported_as_a_job_with_its_progress_then_its_report(
    site: Server, page: Any
) -> None:
    pid = site.world.projects["texts"]
    login(page, site.url, "manager", f"/projects/{pid}/import")
    tasks = [  # a Label Studio export: its predictions by id are left out, and said so
        {"id": 1, "data": {"text": "fine"}, "predictions": [41]},
        {"id": 2, "data": {"text": "also fine"}, "predictions": [42, 43]},
    ]
    page.set_input_files(
        "input[name=file]",
        files=[
            {"name": "export.json", "mimeType": "application/json", "buffer": orjson.dumps(tasks)}
        ],
    )
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-form button.cancel:not([hidden])")
    assert "waiting" in page.inner_text("#import-form .status")
    assert page.is_visible("#import-form progress.upload")
    [job] = run_jobs(site.world)
    assert job.state == "done", job.error
    page.wait_for_selector("#import-form .status:has-text('Imported 2 items')")
    notes = page.inner_text("#import-form .import-notes")
    assert "by id" in notes and "(3×)" in notes
    assert page.is_hidden("#import-form button.cancel")
    wait_js(page, "document.querySelector('#import-history tbody tr')")
    assert "done" in page.inner_text("#import-history tbody tr")


def test_a_bad_upload_fails_its_job_and_every_bad_row_is_listed(site: Server, page: Any) -> None:
    pid = site.world.projects["texts"]
    login(page, site.url, "manager", f"/projects/{pid}/import")
    bad = b'{"data": {"text": "fine"}}\n{"data": {"text": 7}}\n{"data": {"text": \n'
    page.set_input_files(
        "input[name=file]", files=[{"name": "bad.jsonl", "mimeType": "text/plain", "buffer": bad}]
    )
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-form button.cancel:not([hidden])")
    [job] = run_jobs(site.world)
    assert job.state == "failed"
    page.wait_for_selector(".errors-table:not([hidden]) tbody tr")
    cells = page.locator(".errors-table tbody tr td:first-child").all_inner_texts()
    assert [c.split()[-1] for c in cells] == ["2", "3"], cells
    assert "Nothing was imported" in page.inner_text("#import-form .status")


def test_an_export_from_the_project_page_runs_as_a_job_then_downloads(
    site: Server, page: Any
) -> None:
    pid = site.world.projects["texts"]
    login(page, site.url, "client", f"/projects/{pid}")
    page.click("#export-jobs button[data-format=csv]")
    wait_js(page, "document.querySelector('#export-jobs .status').textContent.length > 0")
    assert page.is_visible("#export-jobs progress")
    assert page.is_hidden("#export-jobs .export-ready")
    [job] = run_jobs(site.world)
    assert job.state == "done", job.error
    page.wait_for_selector("#export-jobs .export-ready:not([hidden])")
    href = page.get_attribute("#export-jobs .export-ready a", "href")
    assert href == f"/api/v1/projects/{pid}/exports/{job.id}/file"
    api = site.api("client")
    sync = api.get(f"/api/v1/projects/{pid}/export", params={"format": "csv"})
    got = api.get(href)
    assert got.status_code == 200 and got.content == sync.content
    assert httpx.get(f"{site.url}{href}").status_code == 401  # not without signing in

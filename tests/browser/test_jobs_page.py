"""The jobs page in a real Chromium against a real ``labelfarm serve``: a job's progress bar
moves while a worker runs it (polled, no reload), the row turns done; a running job cancelled
from the page stops and shows as cancelled."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lf_browser import Server, login, wait_js
from lf_world import build_world

from labelfarm.db.engine import Database
from labelfarm.jobs.worker import Worker
from labelfarm.services import job_queue
from labelfarm.services.media import MediaStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))

import job_test_kinds  # noqa: F401  (the test-only kinds the worker below runs)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Database]]:
    """The server without its own job worker: this test runs one, knowing the test kinds."""
    monkeypatch.setenv("LABELFARM_RUN_WORKER", "false")
    data_dir = tmp_path / "data"
    world = build_world(data_dir, n_images=1, n_choice=4)
    server = Server(world, data_dir)
    db = Database(world.settings.resolved_database_url)
    yield server, db
    db.dispose()
    server.stop()


def _row(job_id: int) -> str:
    return f"document.querySelector('tr.job[data-job=\"{job_id}\"]')"


def test_progress_moves_live_and_a_job_is_cancelled_from_the_page(site, page: Any) -> None:
    server, db = site
    world = server.world
    pid = world.projects["animals"]
    now = time.time()

    def add(steps: int, seconds: float) -> int:
        params = {"steps": steps, "step_seconds": seconds}
        return db.run(job_queue.enqueue, kind="test-steps", params=params, now=now, project_id=pid)

    first, second = add(12, 0.25), add(400, 0.05)
    settings = world.settings.model_copy(update={"job_lease_seconds": 3.0})
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    worker = Worker(settings, db, media, name="browser-test")
    runner = threading.Thread(target=worker.run_until_idle)
    login(page, server.url, "manager", f"/projects/{pid}/jobs")
    page.evaluate("() => { window.notReloaded = true; }")
    runner.start()
    try:
        row = _row(first)
        wait_js(page, f"{row}.querySelector('progress').value >= 2")
        seen = page.evaluate(f"() => {row}.querySelector('progress').value")
        wait_js(page, f"{row}.querySelector('progress').value > {seen}")  # it moves
        wait_js(page, f"{row}.dataset.state === 'done'", timeout=20)
        assert page.evaluate(f"() => {row}.querySelector('.job-state').textContent") == "Done"
        assert page.evaluate(f"() => {row}.querySelector('progress').value") == 12
        assert page.evaluate("() => window.notReloaded === true")  # polled, not reloaded
        row = _row(second)
        wait_js(page, f"{row}.dataset.state === 'running'")
        wait_js(page, f"{row}.querySelector('progress').value > 0")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f'button[data-cancel="{second}"]')
        wait_js(page, f"{row}.dataset.state === 'cancelled'", timeout=20)
        assert page.evaluate(f"() => {row}.querySelector('button[data-cancel]') === null")
    finally:
        runner.join(30)
    job = db.run(job_queue.get_job, second)
    assert job.state == "cancelled" and 0 < job.progress_done < 400
    assert db.run(job_queue.get_job, first).state == "done"

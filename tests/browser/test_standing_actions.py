"""A manager on an annotator's page, in a real Chromium against a real server: pause, resume
(the history keeps both, the evidence as sentences), then send every label back for
relabelling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lf_browser import Server, login, wait_js
from lf_world import build_world

from labelfarm.db.engine import Database
from labelfarm.services.projects import load_project
from labelfarm.services.tasks import entries, lease, submit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("standing-actions") / "data"
    world = build_world(data_dir, n_images=1, n_choice=1)
    db = Database(world.settings.resolved_database_url)  # the annotator works through services
    try:
        pid, who = world.projects["texts"], world.users["annotator"]
        project = db.run(load_project, pid)
        tasks = db.run(lease.next_tasks, project, who, 3, time.time())
        raw = [
            {"id": uuid.uuid4().hex, "item_id": t["item_id"], "value": {"verdict": "publish"}}
            for t in tasks
        ]
        db.run(submit.submit, project, who, entries.validate_batch(project, raw), time.time())
    finally:
        db.dispose()
    srv = Server(world, data_dir)
    yield srv
    srv.stop()


def test_a_manager_pauses_resumes_and_sends_labels_back(site: Server, page: Any) -> None:
    pid, who = site.world.projects["texts"], site.world.users["annotator"]
    path = f"/projects/{pid}/annotators/{who}"
    login(page, site.url, "manager", path)
    page.fill("#standing-form input[name=reason]", "spot check")
    page.click("#standing-form button[value=paused]")
    page.wait_for_selector("#standing-form button[value=active]")  # reloaded, paused
    page.fill("#standing-form input[name=reason]", "checked: fine")
    page.click("#standing-form button[value=active]")
    page.wait_for_selector("#standing-form button[value=paused]")
    rows = page.locator("#standing-history tbody tr")
    assert rows.count() == 2
    newest, oldest = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert "checked: fine" in newest and "spot check" in oldest
    assert "Set by hand (Manager); before: Paused." in newest
    assert "{" not in page.locator("#standing-history").inner_text()

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#relabel-form button[type=submit]")
    status = page.locator("#standing-actions .status")
    wait_js(page, "document.querySelector('#standing-actions .status').textContent.length > 0")
    assert status.inner_text().startswith("3 items sent back"), status.inner_text()
    api = site.api("manager")
    report = api.get(f"/api/v1/projects/{pid}/annotators/{who}/quality").json()
    assert report["n_items"] == 0  # nothing of theirs counts in labels now

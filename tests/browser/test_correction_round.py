"""A correction round in a real Chromium against a real ``labelfarm serve`` (which runs its
job worker): a manager goes from the project page to the learning page, reads the promoted
model's confused pairs, opens a round for the first one and sees it listed; the pair-error
table and chart render."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from lf_browser import Server, login
from lf_world import build_world
from test_models_page import N_LABELLED, _fashion_project

from labelfarm.sample_data import fashion_mnist_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist missing"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    """A Fashion-MNIST project with 130 labelled images and a promoted version 1."""
    data_dir = tmp_path_factory.mktemp("rounds-browser") / "data"
    world = build_world(data_dir, n_images=1, n_choice=12)
    pid, truth = _fashion_project(world, data_dir)
    srv = Server(world, data_dir)
    api = srv.api("annotator")
    labelled = 0
    while labelled < N_LABELLED:
        r = api.post(f"/api/v1/projects/{pid}/next", json={"n": min(50, N_LABELLED - labelled)})
        tasks = r.json()["tasks"]
        assert tasks
        batch = [
            {"id": f"seed-{labelled + k}", "task": t["task"],
             "value": {"garment": truth[t["data"]["image"]]}}
            for k, t in enumerate(tasks)
        ]  # fmt: skip
        api.post(f"/api/v1/projects/{pid}/submit", json={"annotations": batch}).raise_for_status()
        labelled += len(batch)
    boss = srv.api("manager")
    models = f"/api/v1/projects/{pid}/models"
    job = boss.post(f"{models}/train", json={"predictor": "image-pixels-logreg.v1"}).json()["job"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = boss.get(f"/api/v1/jobs/{job['id']}").json()["state"]
        if state in ("done", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert state == "done"
    boss.post(f"{models}/1/promote").raise_for_status()
    yield srv, pid
    srv.stop()


def test_a_manager_opens_a_round_from_the_report(site: tuple[Server, int], chromium: Any) -> None:
    srv, pid = site
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, srv.url, "manager", f"/projects/{pid}")
    page.click(f"a[href='/projects/{pid}/learning']")
    page.wait_for_url(f"{srv.url}/projects/{pid}/learning")
    assert page.locator("#no-rounds").count() == 1
    rows = page.locator("#pairs tbody tr")
    assert rows.count() >= 1  # version 1 confuses some pairs of the 40 held-out images
    first = rows.first
    a, b = first.get_attribute("data-a"), first.get_attribute("data-b")
    held = [int(x) for x in first.locator("td.num").all_inner_texts()[:2]]
    assert sum(held) > 0
    table = page.locator("#before-after")
    assert "v1" in table.locator("thead").inner_text()
    assert page.locator("#pair-chart circle").count() >= 1

    page.fill("#round-form input[name=budget]", "25")
    first.locator("button[data-action=open]").click()
    page.wait_for_selector("#rounds tr[data-state=open]")
    row = page.locator("#rounds tr[data-state=open]")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == f"{a} ↔ {b}" and cells[3] == "0 / 25" and cells[5] == "v1"
    assert cells[6].endswith("%")  # the pair's error before the round, at version 1
    assert page.locator("#pairs button[data-action=open]").count() == 0  # one round at a time
    listed = srv.api("manager").get(f"/api/v1/projects/{pid}/correction-rounds").json()["rounds"]
    assert [(r["a"], r["b"], r["state"], r["budget"]) for r in listed] == [(a, b, "open", 25)]

    page.click("#rounds button[data-action=close]")
    page.wait_for_selector("#rounds tr[data-state=closed]")
    assert "manager" in page.locator("#rounds tr[data-state=closed]").inner_text()
    assert errors == []
    context.close()

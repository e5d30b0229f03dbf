"""Models in a real Chromium against a real ``labelfarm serve`` (which runs its job worker):
a manager trains a version on Fashion-MNIST from the models page, watches its progress,
reads its evaluation and confusion matrix, promotes it and pre-labels with it; the
annotator's next task is then pre-filled by it. Verify mode: Enter accepts a prediction
(stored verified), R rejects it into the editor, pre-filled, to correct it."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from lf_browser import Server, login, wait_js
from lf_world import build_world
from PIL import Image
from sqlalchemy import text

from labelfarm.db.engine import Database
from labelfarm.db.project_settings import DEFAULTS
from labelfarm.sample_data import FASHION_CLASSES, fashion_mnist_available, load_fashion_mnist
from labelfarm.services import audit, projects
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore
from labelfarm.services.models.training import in_held_out

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not fashion_mnist_available(), reason="dataset-fashion-mnist missing"),
]

N_ITEMS, N_GOLD, N_LABELLED = 200, 40, 130  # gold: the held-out set; 30 left to pre-label
DISPLAY = {"tshirt_top": "T-shirt or top", "ankle_boot": "Ankle boot"}


def _fashion_project(world: Any, data_dir: Path) -> tuple[int, dict[str, str]]:
    """A project of 200 Fashion-MNIST images (40 of them gold); its id and each image's
    true class by file name."""
    images = load_fashion_mnist("t10k")
    db = Database(world.settings.resolved_database_url)
    audit.use_key(db, world.settings.resolved_audit_key)
    with db.begin("write") as conn:
        created = projects.create_project(
            conn,
            workspace_id=world.workspace_id,
            name="Fashion",
            now=time.time(),
            actor_id=None,
            overlap=1,
            schema={
                "data": {"image": "image"},
                "fields": [
                    {
                        "name": "garment",
                        "type": "choice",
                        "options": list(FASHION_CLASSES),
                        "display": {"en": DISPLAY},
                    }
                ],
            },
        )
    folder = data_dir / "fashion"
    folder.mkdir()
    truth, rows = {}, []
    for i in range(N_ITEMS):
        name = f"fm-{i:03d}.png"
        out = io.BytesIO()
        Image.fromarray(np.asarray(images.images[i])).save(out, "PNG")
        (folder / name).write_bytes(out.getvalue())
        truth[name] = FASHION_CLASSES[int(images.labels[i])]
        row: dict[str, Any] = {"data": {"image": name}, "media": name}
        if i < N_GOLD:
            row["gold"] = {"garment": truth[name]}
        rows.append(row)
    (folder / "items.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    with db.begin("read") as conn:
        project = projects.load_project(conn, created["id"])
    media = MediaStore(world.settings.resolved_media_root, world.settings.resolved_secret_key)
    import_items(
        db, project, folder / "items.jsonl", "jsonl",
        media=media, now=time.time(), user_id=None, base_dir=folder,
    )  # fmt: skip
    db.engine.dispose()
    return int(created["id"]), truth


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    data_dir = tmp_path_factory.mktemp("models-browser") / "data"
    world = build_world(data_dir, n_images=1, n_choice=12)
    pid, truth = _fashion_project(world, data_dir)
    srv = Server(world, data_dir)
    # the annotators' work so far: the true class of 130 images (the training set)
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
    yield srv, pid
    srv.stop()


def _rows(srv: Server, sql: str, **params: Any) -> list[Any]:
    db = Database(srv.world.settings.resolved_database_url)
    try:
        with db.begin("read") as conn:
            return list(conn.execute(text(sql), params))
    finally:
        db.engine.dispose()


def _job_done(page: Any, srv: Server, kind: str, timeout: float = 90.0) -> None:
    """The page shows the model job of ``kind`` ended, its progress bar full."""
    try:
        wait_js(page, f"document.querySelector('.job[data-kind={kind}][data-state=done]')", timeout)
    except AssertionError:
        jobs = _rows(srv, "SELECT kind, state, attempts, message, error FROM jobs")
        raise AssertionError(f"no {kind} job done; jobs: {jobs}") from None
    bar = page.locator(f".job[data-kind={kind}][data-state=done] progress").first
    assert bar.get_attribute("value") == bar.get_attribute("max")


def test_a_manager_trains_promotes_and_pre_labels_from_the_page(
    site: tuple[Server, int], chromium: Any
) -> None:
    srv, pid = site
    manager = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = manager.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, srv.url, "manager", f"/projects/{pid}")
    page.click(f"a[href='/projects/{pid}/models']")
    page.wait_for_url(f"{srv.url}/projects/{pid}/models")
    assert page.locator("#versions").count() == 0  # nothing trained yet

    page.select_option("#train-form select[name=predictor]", "image-pixels-logreg.v1")
    page.click("#train-form button[type=submit]")
    page.wait_for_selector(".job[data-kind=train]")  # listed, then followed until it ends
    _job_done(page, srv, "train")
    page.wait_for_selector("#versions tr[data-version='1'][data-state='ready']")

    row = page.locator("#versions tr[data-version='1']")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "image-pixels-logreg.v1"
    # trained on, evaluated on: the gold, and the labelled items the held-out set draws
    labelled = _rows(srv, "SELECT DISTINCT item_id FROM annotations WHERE project_id = :p", p=pid)
    held = sum(in_held_out(pid, int(i), DEFAULTS["holdout_share"]) for (i,) in labelled)
    assert len(labelled) == N_LABELLED and 0 < held < N_LABELLED
    assert (int(cells[3]), int(cells[4])) == (N_LABELLED - held, N_GOLD + held)
    accuracy = float(cells[6].rstrip("%"))
    assert 30 < accuracy <= 100
    matrix = page.locator("#version-1 svg.confusion-svg")
    assert matrix.locator("g.cell").count() == len(FASHION_CLASSES) ** 2
    counts = [int(n) for n in matrix.locator("g.cell").evaluate_all(
        "cells => cells.map((c) => c.dataset.n)")]  # fmt: skip
    assert sum(counts) == N_GOLD + held
    labels = matrix.locator("text.label").all_text_contents()
    assert "T-shirt or top" in labels and "Ankle boot" in labels and "tshirt_top" not in labels
    assert _rows(srv, "SELECT version FROM model_versions WHERE project_id = :p", p=pid) == [(1,)]

    page.click("button[data-action=promote][data-version='1']")
    page.wait_for_selector("#versions tr.promoted[data-version='1']")
    assert "Version 1" in page.inner_text("#promoted")

    page.click("#prelabel button[data-action=predict]")
    page.wait_for_selector(".job[data-kind=predict]")
    _job_done(page, srv, "predict")
    predicted = _rows(
        srv,
        "SELECT COUNT(*) FROM predictions WHERE project_id = :p AND model_version = '1'",
        p=pid,
    )[0][0]
    assert predicted >= N_ITEMS - N_LABELLED
    assert errors == []
    manager.close()

    # the annotator's next task is pre-filled by version 1 (once the server has seen that
    # the project has predictions: its project cache lives a few seconds)
    api = srv.api("annotator")
    deadline = time.monotonic() + 20
    task = None
    while time.monotonic() < deadline:
        task = api.post(f"/api/v1/projects/{pid}/next", json={"n": 1}).json()["tasks"][0]
        if task["prediction"]:
            break
        time.sleep(0.5)
    assert task and task["prediction"] and task["prediction"]["model"] == "image-pixels-logreg.v1"
    guess = task["prediction"]["value"]["garment"]
    annotator = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = annotator.new_page()
    login(page, srv.url, "annotator", f"/projects/{pid}/annotate")
    wait_js(page, "window.lfPage && window.lfPage.shown()")
    assert page.evaluate("window.lfPage.current()") == task["task"]
    pressed = page.locator(".field-choice button[aria-pressed=true]")
    assert pressed.count() == 1
    assert pressed.locator("span").inner_text() == DISPLAY.get(guess, guess)
    assert page.locator(".field .badge").first.is_visible()
    assert "Pre-filled" in page.inner_text("#banner")
    annotator.close()


def test_verify_mode_accepts_with_enter_and_rejects_into_the_editor(
    site: tuple[Server, int], page: Any
) -> None:
    srv, _ = site
    pid = srv.world.projects["animals"]  # every third item predicted "dog" (imported)
    login(page, srv.url, "anbu", f"/projects/{pid}/annotate?mode=verify")
    wait_js(page, "window.lfPage && window.lfPage.shown()")
    assert page.get_attribute("#verify-btn", "aria-pressed") == "true"
    accepted = rejected = None
    for _ in range(8):
        wait_js(page, "window.lfPage.shown()")
        task = page.evaluate("window.lfPage.current()")
        if page.evaluate("window.lfPage.verifying()"):
            assert page.is_visible("#verify") and page.is_hidden("#fields")
            assert "நாய்" in page.inner_text("#verify .verify-answer")  # "dog", in Tamil
            if accepted is None:
                accepted = task
                page.keyboard.press("Enter")
            else:
                rejected = task
                page.keyboard.press("r")
                assert page.is_hidden("#verify") and page.is_visible("#fields")
                pressed = page.locator(".field-choice button[aria-pressed=true]")
                assert "நாய்" in pressed.inner_text()  # the editor, pre-filled
                page.keyboard.press("1")  # corrected: cat
                page.keyboard.press("Enter")
                break
        else:  # no prediction: the usual editor
            assert page.is_hidden("#verify") and page.is_visible("#fields")
            page.keyboard.press("2")
            page.keyboard.press("Enter")
        wait_js(page, f"window.lfPage.current() !== {orjson.dumps(task).decode()}")
    assert accepted and rejected
    wait_js(page, "window.lfPage.pending() === 0")
    rows = _rows(
        srv,
        "SELECT a.value, a.from_prediction, a.verified FROM annotations a "
        "JOIN users u ON u.id = a.user_id WHERE a.project_id = :p AND u.username = 'anbu' "
        "ORDER BY a.id",
        p=pid,
    )
    stored = [(orjson.loads(v)["kind"], bool(f), bool(ok)) for v, f, ok in rows]
    assert ("dog", True, True) in stored  # the accept
    assert ("cat", True, False) in stored  # the correction of a rejected prediction
    assert all(not ok for kind, _f, ok in stored if kind != "dog")

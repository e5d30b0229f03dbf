"""Calibrated item confidence: properties of the ECE, the reliability bins and the calibrator
(labelfarm.ml.calibration), the calibrators fitted on a project's gold and applied to its
labels (services.calibration), and the calibration report through the API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from labelfarm.client import LabelfarmAPIError
from labelfarm.ml import calibration as cal
from labelfarm.services.aggregation import item_label, label_items
from labelfarm.services.annotator_models import load_annotator_models
from labelfarm.services.calibration import refit_calibration
from labelfarm.services.calibration_store import load_calibrators
from labelfarm.services.fitting import fit_annotator_models

confidences = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200)


# -- the math --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(confidences, st.integers(0, 2**32 - 1), st.integers(1, 20))
def test_bins_have_equal_mass_and_ece_is_their_weighted_gap(conf, seed, n_bins):
    rng = np.random.default_rng(seed)
    correct = rng.random(len(conf)) < 0.7
    bins = cal.reliability_bins(conf, correct, n_bins=n_bins)
    assert bins.count.sum() == len(conf)
    assert bins.count.max() - bins.count.min() <= 1
    assert np.all(np.diff(bins.mean_confidence) >= -1e-12)  # in increasing confidence
    assert np.all(bins.lower <= bins.mean_confidence + 1e-12)
    assert np.all(bins.mean_confidence <= bins.upper + 1e-12)
    ece = cal.expected_calibration_error(conf, correct, n_bins=n_bins)
    gap = (bins.count * np.abs(bins.accuracy - bins.mean_confidence)).sum() / len(conf)
    assert ece == pytest.approx(gap)
    assert 0.0 <= ece <= 1.0


def test_ece_of_a_perfectly_calibrated_and_of_an_overconfident_rater():
    # ten bins of 100 items, each bin's confidence equal to its share of right answers
    conf = np.repeat(np.linspace(0.55, 1.0, 10), 100)
    correct = np.concatenate([np.arange(100) < round(100 * c) for c in np.linspace(0.55, 1, 10)])
    assert cal.expected_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-12)
    # always sure, right 80% of the time: the gap is 0.2 everywhere
    sure = np.ones(1000)
    right = np.arange(1000) % 5 != 0
    assert cal.expected_calibration_error(sure, right) == pytest.approx(0.2)


def _overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidence that says 0.9-1.0 while the truth is right with 0.6-0.8."""
    conf = rng.uniform(0.9, 1.0, n)
    correct = rng.random(n) < 0.6 + 2 * (conf - 0.9)
    return conf, correct


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5))
def test_the_calibrator_is_monotone_bounded_and_reduces_the_error(seed, n_classes):
    rng = np.random.default_rng(seed)
    conf, correct = _overconfident(rng, 400)
    fitted = cal.fit_calibrator(conf, correct, n_classes=n_classes)
    assert fitted.method == "platt" and fitted.n_gold == 400 and fitted.a >= 0
    grid = np.linspace(0.0, 1.0, 101)
    mapped = fitted.apply(grid)
    assert np.all(np.diff(mapped) >= -1e-12)
    assert mapped.min() >= 1.0 / n_classes - 1e-12 and mapped.max() <= 1.0
    fresh, fresh_correct = _overconfident(rng, 400)  # scored on items it was not fitted on
    before = cal.expected_calibration_error(fresh, fresh_correct)
    after = cal.expected_calibration_error(fitted.apply(fresh), fresh_correct)
    assert after < before
    assert cal.Calibrator.from_json(fitted.to_json()).apply_one(0.95) == pytest.approx(
        fitted.apply_one(0.95), abs=1e-6
    )


def test_too_little_gold_keeps_the_identity_and_bad_input_is_named():
    conf, correct = _overconfident(np.random.default_rng(0), cal.MIN_GOLD - 1)
    fitted = cal.fit_calibrator(conf, correct)
    assert fitted.method == "identity" and fitted.n_gold == cal.MIN_GOLD - 1
    np.testing.assert_array_equal(fitted.apply(conf), conf)
    with pytest.raises(ValueError, match="confidence must hold numbers in"):
        cal.fit_calibrator([1.5], [True])
    with pytest.raises(ValueError, match="same shape"):
        cal.expected_calibration_error([0.5, 0.6], [True])
    with pytest.raises(ValueError, match="unknown calibrator method"):
        cal.Calibrator.from_json({"method": "magic"})


def test_cross_fitting_never_scores_an_item_with_its_own_answer():
    rng = np.random.default_rng(4)
    conf, correct = _overconfident(rng, 200)
    out = cal.cross_fitted(conf, correct, rng=np.random.default_rng(9))
    flipped = correct.copy()
    # which half item 0 fell in is the split's business: flip it and compare its own value
    flipped[0] = not flipped[0]
    again = cal.cross_fitted(conf, flipped, rng=np.random.default_rng(9))
    assert again[0] == pytest.approx(out[0])
    assert not np.allclose(again, out)  # the other half's calibrator did change


# -- the service and the API -----------------------------------------------------------------
ACCURACY = (0.95, 0.85, 0.7, 0.6)
N_ITEMS, N_GOLD = 80, 60


def _labelled_with_gold(
    world: Any, tmp_path: Path, *, fit: bool = True
) -> tuple[Any, dict[str, Any], list[int]]:
    """Four annotators (95 to 60% right) label 80 items; then the first 60 become gold.
    Returns the project, the people and the item ids."""
    ws = world.workspace()
    people = {r: world.user(f"u-{r}", role=r, workspace=ws) for r in ("manager", "client")}
    project = world.project(ws, overlap=len(ACCURACY))
    world.add_items(project, N_ITEMS, tmp_path)
    with world.db.begin("read") as conn:
        ids = list(
            conn.execute(
                text("SELECT id FROM items WHERE project_id = :p ORDER BY id"), {"p": project.id}
            ).scalars()
        )
    rng = np.random.default_rng(7)
    truth = {i: int(rng.integers(0, 3)) for i in ids}
    options = ("a", "b", "c")
    for n, accuracy in enumerate(ACCURACY):
        people["annotator"] = user = world.user(f"ann-{n}", role="annotator", workspace=ws)
        while tasks := user["client"].next(project.id, n=20):
            batch = []
            for t, item in zip(tasks, world.item_ids(project.id, user, tasks), strict=True):
                k = truth[item] if rng.random() < accuracy else int(rng.integers(0, 3))
                value = {"label": options[k]}
                batch.append({"id": str(uuid.uuid4()), "task": t["task"], "value": value})
            user["client"].submit(project.id, batch)
    with world.db.begin("write") as conn:
        for item in ids[:N_GOLD]:
            conn.execute(
                text("UPDATE items SET is_gold = :yes, gold = :g WHERE id = :i"),
                {"yes": True, "g": f'{{"label": "{options[truth[item]]}"}}', "i": item},
            )
        if fit:
            fit_annotator_models(conn, project, now=world.clock())
    return project, people, ids


def test_calibrators_are_fitted_on_gold_and_applied_to_the_labels(world, tmp_path: Path):
    project, _, ids = _labelled_with_gold(world, tmp_path)
    summary = world.db.run(refit_calibration, project, now=world.clock())
    assert summary["fields"]["label"]["n_gold"] == N_GOLD
    with world.db.begin("read") as conn:
        calibrators = load_calibrators(conn, project.id)
        models = load_annotator_models(conn, project.id)
        item = ids[N_GOLD]  # not gold
        labels = label_items(conn, project, [item])
        anns = conn.execute(
            text("SELECT user_id, value FROM annotations WHERE item_id = :i"), {"i": item}
        ).mappings()
        raw = item_label(models, project, [dict(a) for a in anns])
        cached = conn.execute(
            text("SELECT label_confidence FROM items WHERE id = :i"), {"i": item}
        ).scalar_one()
    fitted = calibrators["label"]
    assert fitted.method == "platt" and fitted.n_gold == N_GOLD
    assert raw is not None
    expected = fitted.apply_one(raw["confidence"]["label"])
    assert labels[item]["confidence"]["label"] == pytest.approx(expected, abs=1e-6)
    # the cached confidence (adaptive overlap's target, the review queue) is the calibrated one
    assert cached == pytest.approx(labels[item]["item_confidence"], abs=1e-6)


def test_the_calibration_report_through_the_api(world, tmp_path: Path):
    project, people, _ = _labelled_with_gold(world, tmp_path)
    world.db.run(refit_calibration, project, now=world.clock())
    path = f"/projects/{project.id}/quality/calibration"
    for role in ("manager", "client"):
        report = people[role]["client"].request("GET", path)
        (field,) = report["fields"]
        assert field["field"] == "label" and field["n_gold"] == N_GOLD
        assert len(field["bins"]) == report["n_bins"] == 10
        assert sum(b["count"] for b in field["bins"]) == N_GOLD
        assert 0.0 <= field["ece"] <= 1.0 and 0.0 <= field["ece_raw"] <= 1.0
        assert 0.5 < field["accuracy"] <= 1.0
        assert field["calibrator"]["method"] == "platt"
    with pytest.raises(LabelfarmAPIError) as refused:
        people["annotator"]["client"].request("GET", path)
    assert refused.value.status == 403
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    auth = {"Authorization": f"Bearer {people['manager']['token']}"}
    svg = http.get(f"/api/v1{path}.svg", params={"field": "label"}, headers=auth)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and svg.text.count("<circle") == 20  # raw + calibrated
    missing = http.get(f"/api/v1{path}.svg", params={"field": "nope"}, headers=auth)
    assert missing.status_code == 404
    # the quality page shows the diagram (an image of the route above), no inline style
    page = http.get(f"/projects/{project.id}/quality", headers=auth)
    assert page.status_code == 200
    assert f"/api/v1{path}.svg?field=label" in page.text and " style=" not in page.text


def test_the_periodic_refit_job_fits_the_calibrators(world, settings, tmp_path: Path):
    """The ``refit`` job (jobs/refit.py) refits an adaptive project's annotator models, then
    its calibrators, and the cached confidences become the calibrated ones."""
    from labelfarm.jobs.worker import Worker
    from labelfarm.services import job_queue

    project, people, ids = _labelled_with_gold(world, tmp_path, fit=False)  # due: never fitted
    people["manager"]["client"].update_project(project.id, max_overlap=len(ACCURACY) + 1)
    world.db.run(job_queue.enqueue, kind="refit", params={"every": 0}, now=world.clock())
    job = Worker(settings, world.db, world.ctx.media, name="w1", clock=world.clock).run_one()
    assert job is not None and job.state == "done", job and job.error
    assert project.id in job.result["projects"]
    with world.db.begin("read") as conn:
        calibrators = load_calibrators(conn, project.id)
        item = ids[N_GOLD + 1]
        labels = label_items(conn, project, [item])
        cached = conn.execute(
            text("SELECT label_confidence FROM items WHERE id = :i"), {"i": item}
        ).scalar_one()
    assert calibrators["label"].n_gold == N_GOLD
    assert cached == pytest.approx(labels[item]["item_confidence"], abs=1e-6)

"""Aggregators on hand-computed cases: Dawid-Skene (priors, gold seeding), majority,
multichoice per option, box consensus, text medoid, and the reviewer's override."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from labelfarm.schema import compile_schema
from labelfarm.services.aggregation import item_label, label_items
from labelfarm.services.annotator_models import (
    AnnotatorModels,
    ClassModel,
    FieldModel,
    load_annotator_models,
)
from labelfarm.services.fitting import fit_annotator_models
from labelfarm.services.projects import Project

CHOICE = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c"]}]}


def _project(schema: dict) -> Project:
    return Project(
        id=1, workspace_id=1, name="p", schema_version=1, overlap=3, schema=compile_schema(schema)
    )


def _anns(*values: object, field: str = "label") -> list[dict]:
    return [{"id": n, "user_id": 100 + n, "value": {field: v}} for n, v in enumerate(values)]


def test_dawid_skene_prior_on_two_agreeing_votes():
    # No fit yet: each annotator is right with 0.7, wrong 0.15 per other class; flat prior.
    label = item_label(AnnotatorModels(1), _project(CHOICE), _anns("a", "a"))
    assert label is not None
    assert label["value"] == {"label": "a"}
    assert label["confidence"]["label"] == pytest.approx(0.49 / (0.49 + 2 * 0.15**2), abs=1e-6)
    assert label["item_confidence"] == label["confidence"]["label"]
    assert label["method"] == "dawid-skene"
    assert label["n_annotators"] == 2


def test_dawid_skene_trusts_the_reliable_annotator_over_the_spammer():
    reliable = [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]
    spammer = [[1 / 3] * 3] * 3
    model = ClassModel(
        ("a", "b", "c"), np.full(3, 1 / 3), {100: 0, 101: 1}, np.array([reliable, spammer])
    )
    models = AnnotatorModels(1, {"label": FieldModel("label", "dawid-skene", classes=model)})
    label = item_label(models, _project(CHOICE), _anns("a", "b"))
    assert label is not None
    assert label["value"] == {"label": "a"}
    assert label["confidence"]["label"] == pytest.approx(0.9, abs=1e-6)
    # majority vote on the same two answers is a tie, broken towards the first seen
    majority = item_label(models, _project(CHOICE), _anns("a", "b"), method="majority")
    assert majority is not None and majority["method"] == "majority"
    assert majority["confidence"]["label"] == pytest.approx(0.5)


def test_the_newest_answer_of_an_annotator_counts():
    anns = [
        {"id": 1, "user_id": 7, "value": {"label": "a"}},
        {"id": 2, "user_id": 7, "value": '{"label": "b"}'},  # a correction, as JSON text
    ]
    label = item_label(AnnotatorModels(1), _project(CHOICE), anns)
    assert label is not None and label["value"] == {"label": "b"} and label["n_annotators"] == 1
    assert label["confidence"]["label"] == pytest.approx(0.7)


def test_review_overrides_the_annotators():
    review = {"value": {"label": "c"}, "decision": "override"}
    label = item_label(AnnotatorModels(1), _project(CHOICE), _anns("a", "a", "a"), review)
    assert label == {
        "value": {"label": "c"},
        "confidence": {"label": 1.0},
        "item_confidence": 1.0,
        "method": "review",
        "methods": {"label": "review"},
        "n_annotators": 3,
    }


def test_multichoice_is_decided_per_option():
    schema = {"fields": [{"name": "tags", "type": "multichoice", "options": ["x", "y"]}]}
    label = item_label(AnnotatorModels(1), _project(schema), _anns(["x"], ["x"], field="tags"))
    assert label is not None and label["value"] == {"tags": ["x"]}
    per_option = 0.49 / (0.49 + 0.09)  # two agreeing votes, two classes, accuracy 0.7
    assert label["confidence"]["tags"] == pytest.approx(per_option**2, abs=1e-6)
    assert label["method"] == "dawid-skene-per-option"


def test_box_consensus_averages_matched_boxes_and_drops_lone_ones():
    schema = {"fields": [{"name": "boxes", "type": "bbox", "labels": ["product", "logo"]}]}
    box = {"x": 10.0, "y": 10.0, "w": 20.0, "h": 20.0, "label": "product"}
    moved = {**box, "x": 13.0, "y": 7.0}
    stray = {"x": 200.0, "y": 200.0, "w": 5.0, "h": 5.0, "label": "logo"}
    anns = _anns([box], [box], [moved, stray], field="boxes")
    label = item_label(AnnotatorModels(1), _project(schema), anns)
    assert label is not None
    assert label["value"]["boxes"] == [
        {"x": 11.0, "y": 9.0, "w": 20.0, "h": 20.0, "label": "product"}
    ]
    # kept box: support 1 x label agreement 1; dropped box: 1 - support 1/3
    assert label["confidence"]["boxes"] == pytest.approx((1.0 + 2 / 3) / 2, abs=1e-6)
    assert label["method"] == "box-clusters"


def test_text_medoid():
    schema = {"fields": [{"name": "t", "type": "text"}]}
    label = item_label(
        AnnotatorModels(1), _project(schema), _anns("red shirt", "Red  shirt", "blue", field="t")
    )
    assert label is not None and label["value"]["t"] in ("red shirt", "Red  shirt")
    assert label["method"] == "medoid"


def test_dawid_skene_is_seeded_from_gold(world, tmp_path: Path, make_gold):
    """An annotator who swaps a and b on ten gold items is read backwards afterwards.

    Gold items are clamped, so the flipper's counts are true a -> [0, 5, 0], true b ->
    [5, 0, 0], true c -> nothing. The annotators' prior is fitted (ml.annotator_prior): its
    mean is symmetric with the pooled accuracy, (0 + 3 * 1.4) / (10 + 3 * 2) = 0.2625 (the
    hyperprior adds 2 pseudo-counts per row, 1.4 on the diagonal), so m = [0.2625, 0.36875,
    0.36875] for row a (and likewise); its strength per row maximises the Dirichlet-
    multinomial likelihood of the one annotator's row: all five answers in one cell is most
    likely under the weakest prior on the grid (0.5), and row c, without evidence, takes the
    strongest (512, so it is the mean). Rows: a -> ([0, 5, 0] + 0.5 m_a) / 5.5, c -> m_c.
    Class priors: (5, 5, 0) + 1 per class + the balance damping (10 items at the start's
    balance 1/2, 1/2, 0): (11, 11, 1) / 23.
    """
    ws = world.workspace()
    flipper = world.user("flip", role="annotator", workspace=ws)
    project = world.project(ws, overlap=1)
    world.add_items(project, 10, tmp_path)
    truth = {i: ("a" if i <= 5 else "b") for i in range(1, 11)}
    for item, value in truth.items():
        make_gold(item, {"label": value})
    tasks = flipper["client"].next(project.id, n=10)
    items = world.item_ids(project.id, flipper, tasks)
    flipper["client"].submit(
        project.id,
        [
            {
                "id": str(uuid.uuid4()),
                "task": t["task"],
                "value": {"label": "b" if truth[item] == "a" else "a"},
            }
            for t, item in zip(tasks, items, strict=True)
        ],
    )
    with world.db.begin("write") as conn:
        fit_annotator_models(conn, project, now=world.clock())
    with world.db.begin("read") as conn:
        models = load_annotator_models(conn, project.id)
        labels = label_items(conn, project, [1, 6])
    confusion = models.fields["label"].classes.confusion[0]
    off = (1 - 0.2625) / 2
    row_a = (np.array([0.0, 5.0, 0.0]) + 0.5 * np.array([0.2625, off, off])) / 5.5
    np.testing.assert_allclose(confusion[0], row_a, atol=1e-6)
    np.testing.assert_allclose(confusion[2], [off, off, 0.2625], atol=1e-6)
    priors = np.array([11, 11, 1]) / 23
    np.testing.assert_allclose(models.fields["label"].classes.class_priors, priors, atol=1e-6)
    fresh = [{"id": 1, "user_id": flipper["id"], "value": {"label": "a"}}]
    label = item_label(models, project, fresh)
    assert label is not None and label["value"] == {"label": "b"}
    said_a = np.array([row_a[0], row_a[1], off]) * priors  # P(answer a | class) * prior
    expected = said_a[1] / said_a.sum()
    assert label["confidence"]["label"] == pytest.approx(expected, abs=1e-5)
    # gold items are labelled by their gold answer
    assert labels[1]["method"] == "gold" and labels[1]["value"] == {"label": "a"}

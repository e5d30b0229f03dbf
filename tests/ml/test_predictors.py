"""The built-in predictors learn from small real data, save and load exactly, and are
deterministic."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from tests.ml.predictor_data import image_split, text_split

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors import (
    BadModelBlob,
    FieldSpec,
    FitTask,
    InvalidParams,
    ItemInput,
    Predictor,
    PredictTask,
    UnknownPredictor,
    create,
    describe,
    fit_task,
    load,
    names,
    predict_task,
    saved_by,
)
from labelfarm.ml.predictors.base import item_text

IMAGE_LOGREG = ("image-pixels-logreg.v1", "image-hog-logreg.v1")


@pytest.fixture(scope="module")
def images():
    return image_split()


def accuracy(proba: np.ndarray, options, truth) -> float:
    pred = [options[i] for i in proba.argmax(axis=1)]
    return float(np.mean([p == t for p, t in zip(pred, truth, strict=True)]))


@pytest.mark.parametrize("name", IMAGE_LOGREG)
def test_image_predictor_learns_round_trips_and_repeats(name, images):
    train, y, test, y_test, field = images
    model = create(name, [field]).fit(train, {"product": y})
    assert isinstance(model, Predictor)
    proba = model.predict_proba(test)["product"]
    assert proba.shape == (len(test), len(field.options)) and proba.dtype == np.float64
    assert model.predict_proba([])["product"].shape == (0, len(field.options))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert accuracy(proba, field.options, y_test) > 0.6  # chance is 0.1
    blob = model.save()
    assert saved_by(blob) == name
    again = load(name, blob)
    np.testing.assert_array_equal(again.predict_proba(test)["product"], proba)
    other = create(name, [field]).fit(train, {"product": y})
    np.testing.assert_allclose(other.predict_proba(test)["product"], proba, rtol=0, atol=1e-9)
    emb = model.embed(test[:5])
    assert emb is not None and emb.shape[0] == 5
    np.testing.assert_array_equal(emb, again.embed(test[:5]))


def test_hog_features_beat_pixels_on_the_same_images(images):
    train, y, test, y_test, field = images
    acc = {}
    for name in IMAGE_LOGREG:
        proba = create(name, [field]).fit(train, {"product": y}).predict_proba(test)["product"]
        acc[name] = accuracy(proba, field.options, y_test)
    assert acc["image-hog-logreg.v1"] >= acc["image-pixels-logreg.v1"]


def test_colour_and_size_params_change_the_features(images):
    train, y, _, _, field = images
    model = create("image-pixels-logreg.v1", [field], {"size": 16, "colour": True})
    model.fit(train[:50], {"product": y[:50]})
    emb = model.embed(train[:3])
    assert emb is not None and emb.shape == (3, 16 * 16 * 3)


def test_text_predictor_reads_tamil_hindi_and_mixed_text():
    train, y, test, y_test, field = text_split()
    model = create("text-chargram-logreg.v1", [field]).fit(train, {"topic": y})
    proba = model.predict_proba(test)["topic"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert accuracy(proba, field.options, y_test) >= 0.8  # chance is 1/3
    blob = model.save()
    np.testing.assert_array_equal(
        load("text-chargram-logreg.v1", blob).predict_proba(test)["topic"], proba
    )
    emb = model.embed(test)
    assert emb is not None and emb.shape == (len(test), 3)
    # embed answers the decision function: its best score is the predicted option
    np.testing.assert_array_equal(emb.argmax(axis=1), proba.argmax(axis=1))


def test_text_is_normalised_and_found_by_key():
    decomposed = "ந" + "\u0bc6\u0bbe"  # நொ typed as two vowel signs
    composed = "\u0ba8\u0bca"
    assert item_text(ItemInput(1, {"text": decomposed}), None) == composed
    assert item_text(ItemInput(1, {"id": 7, "body": "hello"}), None) == "hello"
    assert item_text(ItemInput(1, {"text": "a", "title": "b"}), "title") == "b"


def test_multichoice_is_one_vs_rest_per_option():
    field = FieldSpec("tags", "multichoice", ("rain", "cricket", "never"))
    rows = [
        ("heavy rain today", ["rain"]),
        ("rain and thunder", ["rain"]),
        ("cricket match won", ["cricket"]),
        ("cricket team wins", ["cricket"]),
        ("rain stopped the cricket match", ["rain", "cricket"]),
        ("rain delays cricket", ["rain", "cricket"]),
        ("a quiet day", []),
        ("nothing happened", None),  # unlabelled: does not train
    ]
    items = [ItemInput(i, {"text": t}) for i, (t, _) in enumerate(rows)]
    model = create("text-chargram-logreg.v1", [field]).fit(items, {"tags": [v for _, v in rows]})
    test = [ItemInput(50, {"text": "rain rain"}), ItemInput(51, {"text": "cricket cricket"})]
    proba = model.predict_proba(test)["tags"]
    assert proba.shape == (2, 3)
    assert proba[0, 0] > proba[1, 0] and proba[1, 1] > proba[0, 1]
    np.testing.assert_array_equal(proba[:, 2], 0.0)  # never chosen: a constant 0


def test_two_fields_and_an_unseen_option():
    choice = FieldSpec("topic", "choice", ("rain", "cricket", "unused"))
    items = [
        ItemInput(i, {"text": t})
        for i, t in enumerate(["rain", "more rain", "cricket", "a cricket bat"])
    ]
    topics = ["rain", "rain", "cricket", "cricket"]
    flags = FieldSpec("flag", "choice", ("ok", "bad"))
    model = create("text-chargram-logreg.v1", [choice, flags])
    model.fit(items, {"topic": topics, "flag": ["ok"] * 4})
    proba = model.predict_proba(items)
    assert (proba["topic"][:, 2] == 0).all()
    np.testing.assert_array_equal(proba["flag"], [[1.0, 0.0]] * 4)


def test_registry_lists_names_and_refuses_unknown_ones():
    assert set(names()) >= {
        "image-pixels-logreg.v1",
        "image-hog-logreg.v1",
        "text-chargram-logreg.v1",
        "text-e5-logreg.v1",
        "image-nsfw-logreg.v1",
        "image-cnn-torch.v1",
    }
    field = FieldSpec("topic", "choice", ("a", "b"))
    with pytest.raises(UnknownPredictor) as e:
        create("image-magic.v9", [field])
    assert e.value.status == 422 and "image-hog-logreg.v1" in e.value.message
    rows = {d["name"]: d for d in describe()}
    assert rows["text-chargram-logreg.v1"]["input"] == "text"
    assert rows["image-pixels-logreg.v1"]["available"] is True
    assert {p["name"] for p in rows["image-hog-logreg.v1"]["params"]} >= {"size", "hog", "c"}


@pytest.mark.parametrize(
    ("params", "named"),
    [({"size": 3}, "size"), ({"colour": "yes"}, "colour"), ({"sharpen": True}, "sharpen"),
     ({"max_iter": 0}, "max_iter"), ({"c": -1}, "c")],
)  # fmt: skip
def test_bad_params_are_refused_by_name(params, named):
    field = FieldSpec("topic", "choice", ("a", "b"))
    with pytest.raises(InvalidParams, match=repr(named)) as e:
        create("image-pixels-logreg.v1", [field], params)
    assert e.value.status == 422


def test_bad_fields_labels_and_media_are_refused():
    with pytest.raises(InvalidInput, match="choice or multichoice"):
        FieldSpec("note", "text", ("a",))
    field = FieldSpec("topic", "choice", ("a", "b"))
    model = create("text-chargram-logreg.v1", [field])
    items = [ItemInput(1, {"text": "x"}), ItemInput(2, {"text": "y"})]
    with pytest.raises(InvalidInput, match="'c' is not one of its options"):
        model.fit(items, {"topic": ["a", "c"]})
    with pytest.raises(InvalidInput, match="not trained"):
        model.predict_proba(items)
    image_model = create("image-pixels-logreg.v1", [field])
    with pytest.raises(InvalidInput, match="item 9"):
        image_model.fit([ItemInput(9, {}, b"not an image")], {"topic": ["a"]})


def test_load_refuses_another_predictors_blob():
    train, y, _, _, field = text_split()
    blob = create("text-chargram-logreg.v1", [field]).fit(train, {"topic": y}).save()
    with pytest.raises(BadModelBlob, match=r"saved by predictor 'text-chargram-logreg\.v1'"):
        load("image-pixels-logreg.v1", blob)
    with pytest.raises(BadModelBlob, match="not a saved labelfarm model"):
        load("text-chargram-logreg.v1", b"\x80\x04junk")


def test_compute_tasks_pickle_and_match_a_direct_fit(images):
    train, y, test, _, field = images
    task = FitTask(
        "image-hog-logreg.v1", (field,), {"max_iter": 30}, train[:200], {"product": y[:200]}
    )
    task = pickle.loads(pickle.dumps(task))
    blob = fit_task(task)
    direct = create("image-hog-logreg.v1", [field], {"max_iter": 30}).fit(
        train[:200], {"product": y[:200]}
    )
    predicted = predict_task(pickle.loads(pickle.dumps(PredictTask(task.name, blob, test[:50]))))
    np.testing.assert_allclose(
        predicted["product"], direct.predict_proba(test[:50])["product"], atol=1e-9
    )

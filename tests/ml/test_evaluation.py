"""evaluate_choice agrees with scikit-learn's metrics, and its calibration error with a
direct count."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from labelfarm.ml.evaluation import evaluate_choice

OPTIONS = ["cat", "dog", "bird", "fish"]


def random_case(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), truth] += 1.5  # better than chance, not perfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return [OPTIONS[t] for t in truth], proba


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_equal_sklearns(seed):
    y_true, proba = random_case(seed)
    result = evaluate_choice(y_true, proba, OPTIONS)
    y_pred = [OPTIONS[i] for i in proba.argmax(axis=1)]
    assert result["n"] == len(y_true)
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=OPTIONS, zero_division=0)
    for i, o in enumerate(OPTIONS):
        row = result["per_class"][o]
        assert row["precision"] == pytest.approx(p[i])
        assert row["recall"] == pytest.approx(r[i])
        assert row["f1"] == pytest.approx(f[i])
        assert row["support"] == s[i]
    assert result["confusion"] == confusion_matrix(y_true, y_pred, labels=OPTIONS).tolist()
    assert result["options"] == OPTIONS


def test_a_class_never_predicted_or_never_true():
    # "fish" is never true and never predicted; "bird" is predicted but never true
    y_true = ["cat", "cat", "dog", "dog"]
    proba = np.array([[0.9, 0.1, 0, 0], [0.2, 0, 0.8, 0], [0, 1.0, 0, 0], [0.6, 0.4, 0, 0]])
    result = evaluate_choice(y_true, proba, OPTIONS)
    y_pred = ["cat", "bird", "dog", "cat"]
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert result["per_class"]["bird"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert result["per_class"]["fish"]["support"] == 0
    assert result["confusion"][0] == [1, 0, 1, 0]  # a cat taken for a bird


def test_ece_is_the_weighted_gap_per_confidence_bin():
    # bins: 0.95 (two right, one wrong) and 0.55 (one right, one wrong); 1.0 is in the last
    y_true = ["cat", "cat", "dog", "cat", "dog", "cat"]
    top = [0.95, 0.95, 0.95, 0.55, 0.55, 1.0]
    picks = [0, 0, 0, 0, 0, 0]  # always "cat"
    proba = np.zeros((6, 4))
    for i, (c, k) in enumerate(zip(top, picks, strict=True)):
        proba[i, k] = c
        proba[i, 1] = 1 - c
    result = evaluate_choice(y_true, proba, OPTIONS)
    last = abs(np.mean([0.95, 0.95, 0.95, 1.0]) - 3 / 4) * 4 / 6
    middle = abs(0.55 - 1 / 2) * 2 / 6
    assert result["ece"] == pytest.approx(last + middle)


def test_a_perfectly_calibrated_certain_model_has_no_error():
    y_true = ["cat", "dog", "bird"]
    result = evaluate_choice(y_true, np.eye(4)[[0, 1, 2]], OPTIONS)
    assert result["accuracy"] == 1.0 and result["ece"] == 0.0


def test_bad_shapes_and_values_are_refused():
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        evaluate_choice(["cat", "dog"], np.zeros((2, 3)), OPTIONS)
    with pytest.raises(ValueError, match="'cow' is not one of the options"):
        evaluate_choice(["cow"], np.zeros((1, 4)), OPTIONS)

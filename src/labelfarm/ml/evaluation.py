"""How good a model's predictions are on labelled items: accuracy, F1, calibration, confusions.

The predicted option is the row's most probable one (the first on a tie). Calibration is the
expected calibration error over 10 equal-width bins of that top probability: the
item-weighted mean gap between a bin's mean confidence and its accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ECE_BINS = 10


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE with ``bins`` equal-width bins on [0, 1] (a confidence of exactly 1 is in the last)."""
    n = len(confidence)
    if n == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            gap = abs(float(confidence[in_bin].mean()) - float(correct[in_bin].mean()))
            total += gap * int(in_bin.sum()) / n
    return total


def evaluate_choice(
    y_true: Sequence[str], proba: np.ndarray, options: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, ECE, per-class precision/recall/F1/support and the confusion matrix.

    ``proba`` is ``(n, len(options))``; ``y_true[i]`` is an option. The confusion matrix's
    rows are the truth and its columns the prediction, both in ``options`` order. Macro-F1
    averages over the options that occur in the truth or the predictions; a class never
    predicted has precision 0, one never true has recall 0.
    """
    options = list(options)
    proba = np.asarray(proba, dtype=np.float64)
    n, k = len(y_true), len(options)
    if proba.shape != (n, k):
        raise ValueError(f"proba must be (n, len(options)) = ({n}, {k}), got {proba.shape}")
    index = {o: i for i, o in enumerate(options)}
    unknown = [v for v in y_true if v not in index]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not one of the options")
    truth = np.asarray([index[v] for v in y_true], dtype=np.int64)
    pred = proba.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    correct = (pred == truth).astype(np.float64)
    confidence = proba.max(axis=1) if n else np.zeros(0)
    return {
        "n": n,
        "accuracy": float(correct.mean()) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "ece": expected_calibration_error(confidence, correct),
        "per_class": {
            o: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, o in enumerate(options)
        },
        "confusion": confusion.tolist(),
        "options": options,
    }

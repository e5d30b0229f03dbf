"""Out-of-sample class probabilities by K-fold cross-validation.

Each item is predicted by a model that never saw it: the items are dealt into ``k`` folds by
a stable hash of their id (so the same items make the same folds in every run), and for each
fold a fresh model of the version's predictor, with the version's parameters, is trained on
the other folds and predicts this one. The label-error job and ``bench/label_errors.py``
both call :func:`out_of_sample_proba`, so the benchmark measures what the job computes.

Training and predicting go through ``run(fn, task)``: the job hands them to its executor
(the worker, or a Ray cluster), the benchmark calls them in process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labelfarm.ml.predictors import compute
from labelfarm.ml.predictors.base import FieldSpec, ItemInput

MIN_FOLDS, MAX_FOLDS, DEFAULT_FOLDS = 2, 10, 5
Runner = Callable[[Callable[[Any], Any], Any], Any]


def fold_numbers(item_ids: Sequence[int], k: int, salt: str = "") -> np.ndarray:
    """Each item's fold in ``0..k-1``: the items ordered by a stable hash of their id, then
    dealt round-robin (the folds differ in size by at most one)."""
    if not MIN_FOLDS <= k <= MAX_FOLDS:
        raise ValueError(f"folds must be in [{MIN_FOLDS}, {MAX_FOLDS}], got {k}")
    keys = [
        hashlib.sha256(f"labelfarm folds v1:{salt}:{i}".encode()).digest()[:8] for i in item_ids
    ]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    folds = np.empty(len(keys), dtype=np.int64)
    folds[order] = np.arange(len(keys)) % k
    return folds


def local_runner(fn: Callable[[Any], Any], task: Any) -> Any:
    """Run the task here (the benchmark's runner)."""
    return fn(task)


def out_of_sample_proba(
    predictor: str,
    specs: tuple[FieldSpec, ...],
    params: dict[str, Any],
    items: Sequence[ItemInput],
    labels: dict[str, list[Any]],
    folds: np.ndarray,
    *,
    run: Runner = local_runner,
    on_fold: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Per field, ``(n, n_options)`` probabilities of every item predicted by the model
    trained without its fold. ``labels[field][i]`` is item ``i``'s label (None: none for
    that field; it still gets probabilities). ``on_fold(done, k)`` reports progress."""
    n = len(items)
    if len(folds) != n or any(len(v) != n for v in labels.values()):
        raise ValueError("items, labels and folds must have the same length")
    out = {s.name: np.zeros((n, len(s.options)), dtype=np.float64) for s in specs}
    k = int(folds.max()) + 1 if n else 0
    for fold in range(k):
        held = [int(i) for i in np.flatnonzero(folds == fold)]
        train = [int(i) for i in np.flatnonzero(folds != fold)]
        if not held:
            continue
        fit = compute.FitTask(
            predictor,
            specs,
            params,
            [items[i] for i in train],
            {name: [values[i] for i in train] for name, values in labels.items()},
        )
        blob = run(compute.fit_task, fit)
        proba = run(
            compute.predict_task, compute.PredictTask(predictor, blob, [items[i] for i in held])
        )
        for s in specs:
            out[s.name][held] = np.asarray(proba[s.name], dtype=np.float64)
        if on_fold is not None:
            on_fold(fold + 1, k)
    return out

"""Peers of ``bench/aggregation.py``, run inside ``.bench-envs/aggregation`` (never labelfarm's
environment): crowd-kit's Dawid-Skene and GLAD, cleanlab's multi-annotator CROWDLAB.

    python _aggregation_peers.py INPUT.json OUTPUT.json

INPUT: ``{"n_classes", "glad_iter", "features": "x.npy", "runs": {RUN: {"items": [...], "labels":
[[item, worker, label], ...]}}}``: per run, the exported human labels (item = row of the
feature matrix). OUTPUT: ``{RUN: {METHOD: [label per item, in "items" order] | {"error"}}}``
plus seconds per method. With ``"methods": ["crowdkit_ds"]`` (the real crowds, which have no
features) only those methods run and ``features`` may be absent.

CROWDLAB needs a classifier's out-of-sample predicted probabilities: as in cleanlab's
tutorial, a model (PCA to 50 dimensions + multinomial logistic regression on the pixels) is
trained on the majority-vote labels with 5-fold cross-validation.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def _crowdkit(df: pd.DataFrame, items: list[int], method: str, n_iter: int) -> list[int]:
    from crowdkit.aggregation import GLAD, DawidSkene

    model = DawidSkene(n_iter=100) if method == "ds" else GLAD(n_iter=n_iter)
    result = model.fit_predict(df)
    return [int(result.get(i, -1)) for i in items]


def _pred_probs(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(PCA(n_components=50, random_state=0), LogisticRegression(max_iter=300))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    probs = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
    out = np.full((len(y), n_classes), 1e-6)
    out[:, np.unique(y)] = probs
    return out / out.sum(axis=1, keepdims=True)


def _crowdlab(df: pd.DataFrame, items: list[int], x: np.ndarray, n_classes: int) -> list[int]:
    from cleanlab.multiannotator import get_label_quality_multiannotator, get_majority_vote_label

    workers = sorted(df["worker"].unique())
    row = {item: n for n, item in enumerate(items)}
    col = {w: n for n, w in enumerate(workers)}
    wide = np.full((len(items), len(workers)), np.nan)
    for item, worker, label in df.itertuples(index=False):
        wide[row[item], col[worker]] = label
    frame = pd.DataFrame(wide, columns=[str(w) for w in workers])
    if (frame.notna().sum(axis=1) <= 1).all():
        # one label per item: CROWDLAB has no consensus to form (cleanlab refuses and points
        # to single-label scoring, which does not change labels): the given label stands
        return [int(v) for v in np.nanmax(wide, axis=1)]
    majority = get_majority_vote_label(frame, verbose=False)
    probs = _pred_probs(x[items], np.asarray(majority), n_classes)
    result = get_label_quality_multiannotator(frame, probs, verbose=False)
    return [int(v) for v in result["label_quality"]["consensus_label"]]


def main(src: str, dst: str) -> None:
    with open(src) as fh:
        spec = json.load(fh)
    x = (
        np.load(spec["features"]).reshape(-1, 784).astype(np.float32) / 255.0
        if spec.get("features")
        else np.zeros((0, 784), dtype=np.float32)
    )
    wanted = spec.get("methods")
    out: dict[str, Any] = {}
    for run, data in spec["runs"].items():
        df = pd.DataFrame(data["labels"], columns=["task", "worker", "label"])
        items = data["items"]
        answers: dict[str, Any] = {}
        methods = {
            "crowdkit_ds": partial(_crowdkit, df, items, "ds", 100),
            "crowdkit_glad": partial(_crowdkit, df, items, "glad", spec.get("glad_iter", 100)),
            "crowdlab": partial(
                _crowdlab, df.rename(columns={"task": "item"}), items, x, spec["n_classes"]
            ),
        }
        for name, fn in methods.items():
            if wanted is not None and name not in wanted:
                continue
            t0 = time.perf_counter()
            try:
                answers[name] = fn()
            except Exception as exc:  # reported, not fatal: the other peers still count
                answers[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            answers[f"{name}_seconds"] = round(time.perf_counter() - t0, 3)
        out[run] = answers
    with open(dst, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""scikit-activeml's UncertaintySampling (margin), run inside ``.bench-envs/active-learning``
(never labelfarm's environment) for ``bench/active_learning.py``.

    python _al_peer.py        # then one JSON request per line on stdin, one answer per line

Request: ``{"proba": "p.npy", "labels": "y.npy", "batch": 100, "seed": 0}``: ``p.npy`` holds
the class probabilities (n, k) the benchmark's model (labelfarm's predictor, trained on the
labelled items) gives every pool item, ``y.npy`` the pool's labels so far (-1: unlabelled).
Answer: ``{"picked": [pool positions], "seconds": s}``.

The model is the same one: scikit-activeml's ``SklearnClassifier`` wraps an estimator that
answers those probabilities for the pool item whose position is its only feature, and
``UncertaintySampling(method="margin_sampling")`` queries ``batch`` unlabelled candidates with
it, exactly as it would with any scikit-learn classifier.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

warnings.filterwarnings("ignore")


class PoolProbabilities(ClassifierMixin, BaseEstimator):
    """A fitted model's probabilities of the pool items, looked up by pool position."""

    def __init__(self, proba: np.ndarray | None = None) -> None:
        self.proba = proba

    # "X", not "x": skactiveml's wrapper copies the estimator's fit signature by name
    def fit(self, X: np.ndarray, y: np.ndarray) -> PoolProbabilities:
        assert self.proba is not None
        self.classes_ = np.arange(self.proba.shape[1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        assert self.proba is not None
        return np.asarray(self.proba[np.asarray(X)[:, 0].astype(np.int64)])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_proba(X).argmax(axis=1))


def query(request: dict[str, object]) -> dict[str, object]:
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import UncertaintySampling

    proba = np.load(str(request["proba"]))
    y = np.load(str(request["labels"])).astype(np.float64)
    y[y < 0] = np.nan
    k = proba.shape[1]
    t0 = time.perf_counter()
    x = np.arange(len(proba), dtype=np.float64)[:, None]
    clf = SklearnClassifier(
        PoolProbabilities(proba), classes=np.arange(k), missing_label=np.nan, random_state=0
    )
    qs = UncertaintySampling(method="margin_sampling", random_state=int(str(request["seed"])))
    picked = qs.query(x, y, clf, fit_clf=True, batch_size=int(str(request["batch"])))
    return {"picked": [int(i) for i in picked], "seconds": time.perf_counter() - t0}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = query(json.loads(line))
        except Exception as exc:  # reported to the benchmark, which stops with the message
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Auto-accept thresholds with a precision guarantee (pure: arrays in, numbers out).

The evidence is a model's class probabilities on held-out items with their human labels.
Per class ``c`` (the items the model predicts as ``c``, with that prediction's confidence),
candidate thresholds are tested from high to low; a threshold ``t`` passes when the one-sided
Clopper-Pearson lower bound (level ``1 - alpha``) of the precision of the predictions with
confidence ``>= t`` reaches the target. The search stops at the first candidate that fails,
and the accepted threshold is the last one that passed: fixed-sequence testing, so the
guarantee (each accepted threshold's precision is at least the target with probability
``1 - alpha``) survives the search, with no correction for the number of candidates.

The sequence starts at the highest candidate keeping at least :data:`START_SHARE` of the
class's held-out predictions and at least :func:`min_evidence` of them (fewer could not pass
even if every one were right): a place fixed by the confidences alone, never by which
predictions are right, so the order of the tests is fixed before their outcomes and one
wrong (or mislabelled) item among the very first predictions does not end the search. With
too little evidence no threshold is given: at a 98% target and ``alpha = 0.05`` that takes
149 correct predictions above the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

ALPHA = 0.05  # one-sided: a lower 95% confidence bound
# the first candidate keeps at least this share of the class's held-out predictions (and at
# least min_evidence of them): one wrong label among the very first does not end the search
START_SHARE = 0.3


def clopper_pearson_lower(correct: int, n: int, alpha: float = ALPHA) -> float:
    """The one-sided ``1 - alpha`` Clopper-Pearson lower bound of a proportion: ``correct``
    successes of ``n`` trials (0 when there is no trial or no success)."""
    if n < 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if correct == 0:
        return 0.0
    return float(beta.ppf(alpha, correct, n - correct + 1))


def clopper_pearson_upper(correct: int, n: int, alpha: float = ALPHA) -> float:
    """The one-sided ``1 - alpha`` Clopper-Pearson upper bound of a proportion."""
    if n < 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if correct == n:
        return 1.0
    return float(beta.ppf(1 - alpha, correct + 1, n - correct))


def min_evidence(target: float, alpha: float = ALPHA) -> int:
    """The fewest predictions, all correct, whose lower bound reaches ``target``."""
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1), got {target}")
    n = max(1, math.ceil(math.log(alpha) / math.log(target)))
    while clopper_pearson_lower(n, n, alpha) < target:  # float rounding at the edge
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class ClassThreshold:
    """A class's accepted threshold (None: none passed) and its evidence: ``n`` held-out
    predictions of the class at or above it, ``correct`` of them right (with no threshold:
    every prediction of the class)."""

    cls: int
    threshold: float | None
    n: int
    correct: int
    lower: float
    tested: int  # candidates tested (the last one failed, unless every one passed)

    @property
    def precision(self) -> float | None:
        return self.correct / self.n if self.n else None


def class_threshold(
    confidence: np.ndarray,
    right: np.ndarray,
    target: float,
    *,
    cls: int = 0,
    alpha: float = ALPHA,
    stride: int = 1,
    start_share: float = START_SHARE,
) -> ClassThreshold:
    """The threshold search for one class: ``confidence`` (m,) of the m held-out predictions
    of the class, ``right`` (m,) whether each is right. Candidates are the distinct
    confidences from high to low (with ``stride`` > 1, every ``stride``-th prediction's)."""
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(right, dtype=bool)
    if conf.shape != ok.shape or conf.ndim != 1:
        raise ValueError("confidence and right must be 1-D arrays of the same length")
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    n_at = np.arange(1, len(conf) + 1)
    correct_at = np.cumsum(ok)
    # a candidate is a distinct confidence: it keeps every prediction tied with it
    last_of_tie = np.r_[conf[1:] != conf[:-1], True] if len(conf) else np.zeros(0, bool)
    candidates = np.flatnonzero(last_of_tie)
    first = max(min_evidence(target, alpha), math.ceil(start_share * len(conf)))
    candidates = candidates[n_at[candidates] >= first]
    if stride > 1:
        candidates = candidates[:: int(stride)]
    accepted: tuple[float, int, int, float] | None = None
    tested = 0
    for i in candidates:
        tested += 1
        n, k = int(n_at[i]), int(correct_at[i])
        lower = clopper_pearson_lower(k, n, alpha)
        if lower < target:
            break
        accepted = (float(conf[i]), n, k, lower)
    if accepted is None:
        n, k = len(conf), int(ok.sum())
        return ClassThreshold(cls, None, n, k, clopper_pearson_lower(k, n, alpha), tested)
    t, n, k, lower = accepted
    return ClassThreshold(cls, t, n, k, lower, tested)


def search_thresholds(
    proba: np.ndarray,
    truth: np.ndarray,
    target: float,
    *,
    alpha: float = ALPHA,
    stride: int = 1,
    start_share: float = START_SHARE,
) -> list[ClassThreshold]:
    """Per class, the accepted threshold on the model's confidence. ``proba`` (n, k): the
    model's class probabilities on n held-out items; ``truth`` (n,): their human labels as
    class indexes. A prediction is the arg-max class; its confidence that class's probability."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(truth, dtype=np.int64)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(f"proba must be (n, k) and truth (n,), got {p.shape} and {y.shape}")
    predicted = p.argmax(axis=1) if len(p) else np.zeros(0, np.int64)
    confidence = p.max(axis=1) if len(p) else np.zeros(0)
    out = []
    for c in range(p.shape[1]):
        mine = predicted == c
        out.append(
            class_threshold(
                confidence[mine],
                y[mine] == c,
                target,
                cls=c,
                alpha=alpha,
                stride=stride,
                start_share=start_share,
            )
        )
    return out


def accepted_mask(proba: np.ndarray, thresholds: dict[int, float]) -> np.ndarray:
    """Which items the thresholds accept: the arg-max class has a threshold and its
    probability reaches it. ``thresholds``: class index -> threshold."""
    p = np.asarray(proba, dtype=np.float64)
    if not len(p):
        return np.zeros(0, dtype=bool)
    predicted = p.argmax(axis=1)
    confidence = p.max(axis=1)
    bar = np.array([thresholds.get(c, np.inf) for c in range(p.shape[1])])
    return np.asarray(confidence >= bar[predicted])

"""Calibration of item confidence: how often is a label rated ``p`` confident right?

- :func:`reliability_bins`: items sorted by confidence and cut into ``n_bins`` bins of
  (nearly) equal mass; per bin the mean confidence, the accuracy and the count.
- :func:`expected_calibration_error`: ``sum_b (n_b / n) |accuracy_b - confidence_b|`` over
  those bins (equal-mass bins, so no bin is empty and every bin's accuracy rests on the same
  number of items).
- :func:`fit_calibrator`: a monotone map of the top-class confidence fitted on gold items
  (whose correctness is known): Platt scaling on the log-odds, ``sigmoid(a * logit(c) + b)``
  with ``a >= 0``, fitted by maximum likelihood with a Gaussian prior pulling ``(a, b)``
  towards the identity ``(1, 0)`` (so a handful of gold, or gold without a single error,
  moves the map only a little). With fewer than ``MIN_GOLD`` gold items the calibrator is
  the identity: too little evidence to fit two parameters honestly.
- :func:`cross_fitted`: each half of the gold calibrated by the calibrator fitted on the other
  half, so the error measured on the result is honest (never scored on what it was fitted on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from labelfarm.ml.labels import FloatArray

__all__ = [
    "IDENTITY",
    "MIN_GOLD",
    "Calibrator",
    "ReliabilityBins",
    "cross_fitted",
    "expected_calibration_error",
    "fit_calibrator",
    "reliability_bins",
]

MIN_GOLD = 30  # gold items needed before a calibrator is fitted (else the identity)
PRIOR_PRECISION = 1.0  # Gaussian prior on (a - 1, b): its precision, in pseudo-items
_EPS = 1e-6


@dataclass(frozen=True)
class ReliabilityBins:
    """One entry per non-empty equal-mass bin, in increasing confidence."""

    mean_confidence: FloatArray
    accuracy: FloatArray
    count: npt.NDArray[np.int64]
    lower: FloatArray  # smallest confidence in the bin
    upper: FloatArray  # largest confidence in the bin


def _checked(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct)
    if conf.ndim != 1 or ok.shape != conf.shape:
        raise ValueError(
            "confidence and correct must be 1-D arrays of the same shape (n_items,), got "
            f"{conf.shape} and {ok.shape}"
        )
    if ok.dtype.kind not in "bi" or (ok.size and not np.isin(ok, (0, 1)).all()):
        raise ValueError("correct must hold booleans (or 0/1)")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidence must hold numbers in [0, 1]")
    return conf, ok.astype(np.float64)


def reliability_bins(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 10
) -> ReliabilityBins:
    """Equal-mass reliability bins (``min(n_bins, n_items)`` of them; ties in confidence
    are broken by input order, so bins are exactly balanced)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf, ok = _checked(confidence, correct)
    order = np.argsort(conf, kind="stable")
    parts = [p for p in np.array_split(order, min(n_bins, max(conf.size, 1))) if p.size]
    return ReliabilityBins(
        mean_confidence=np.array([conf[p].mean() for p in parts]),
        accuracy=np.array([ok[p].mean() for p in parts]),
        count=np.array([p.size for p in parts], dtype=np.int64),
        lower=np.array([conf[p].min() for p in parts]),
        upper=np.array([conf[p].max() for p in parts]),
    )


def expected_calibration_error(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 10
) -> float:
    """ECE over equal-mass bins, in [0, 1]; 0.0 for no items."""
    bins = reliability_bins(confidence, correct, n_bins=n_bins)
    total = int(bins.count.sum())
    if total == 0:
        return 0.0
    gap = np.abs(bins.accuracy - bins.mean_confidence)
    return float((bins.count * gap).sum() / total)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


@dataclass(frozen=True)
class Calibrator:
    """``sigmoid(a * logit(c) + b)`` of a top-class confidence ``c``, kept in
    ``[floor, 1]`` (``floor`` = 1 / number of classes: the top class is never rated below
    chance). ``method`` is ``"platt"`` or ``"identity"``; ``n_gold`` the items fitted on."""

    method: str
    a: float = 1.0
    b: float = 0.0
    floor: float = 0.0
    n_gold: int = 0

    def apply(self, confidence: npt.ArrayLike) -> FloatArray:
        conf = np.asarray(confidence, dtype=np.float64)
        if self.method == "identity":
            return conf
        z = self.a * _logit(conf) + self.b
        out = 1.0 / (1.0 + np.exp(-z))
        return np.asarray(np.clip(out, self.floor, 1.0), dtype=np.float64)

    def apply_one(self, confidence: float) -> float:
        return float(self.apply(np.array([confidence]))[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "a": round(self.a, 8),
            "b": round(self.b, 8),
            "floor": round(self.floor, 8),
            "n_gold": self.n_gold,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Calibrator:
        method = str(raw.get("method", "identity"))
        if method not in ("identity", "platt"):
            raise ValueError(f"unknown calibrator method {method!r}")
        return cls(
            method,
            float(raw.get("a", 1.0)),
            float(raw.get("b", 0.0)),
            float(raw.get("floor", 0.0)),
            int(raw.get("n_gold", 0)),
        )


IDENTITY = Calibrator("identity")


def fit_calibrator(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_classes: int = 2,
    min_gold: int = MIN_GOLD,
) -> Calibrator:
    """Platt scaling of the top-class confidence on gold (see the module docstring); the
    identity with fewer than ``min_gold`` items."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    conf, ok = _checked(confidence, correct)
    if conf.size < max(min_gold, 1):
        return Calibrator("identity", n_gold=int(conf.size))
    x = _logit(conf)

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        z = theta[0] * x + theta[1]
        # -log p(correct) for a logistic model, stably: log(1 + exp(-z)) and log(1 + exp(z))
        nll = np.where(ok > 0, np.logaddexp(0.0, -z), np.logaddexp(0.0, z))
        grad_z = 1.0 / (1.0 + np.exp(-z)) - ok
        prior = 0.5 * PRIOR_PRECISION * ((theta[0] - 1.0) ** 2 + theta[1] ** 2)
        grad = np.array([(grad_z * x).sum(), grad_z.sum()]) + PRIOR_PRECISION * (
            theta - np.array([1.0, 0.0])
        )
        return float(nll.sum() + prior), grad

    result = minimize(
        loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, 20.0), (-20, 20)]
    )
    a, b = (float(v) for v in result.x)
    return Calibrator("platt", a, b, floor=1.0 / n_classes, n_gold=int(conf.size))


def cross_fitted(
    confidence: npt.ArrayLike,
    correct: npt.ArrayLike,
    *,
    n_classes: int = 2,
    rng: np.random.Generator,
    min_gold: int = MIN_GOLD,
) -> FloatArray:
    """Each item's confidence calibrated by a calibrator fitted on the other half of the
    items (a random split by ``rng``): an honest input for :func:`expected_calibration_error`
    and :func:`reliability_bins`. Each half is fitted only when it holds ``min_gold`` items."""
    conf, ok = _checked(confidence, correct)
    half = np.zeros(conf.size, dtype=bool)
    half[rng.permutation(conf.size)[: conf.size // 2]] = True
    out = conf.copy()
    for scored in (half, ~half):
        fitted = fit_calibrator(
            conf[~scored], ok[~scored] > 0, n_classes=n_classes, min_gold=min_gold
        )
        out[scored] = fitted.apply(conf[scored])
    return out

"""The calibration report of a project: per ``choice`` field, how well the confidence of its
labels matches how often they are right, measured on gold.

The evidence is the field's gold items with labels, each with the confidence Dawid-Skene
gives it without its answer (:func:`labelfarm.services.calibration.gold_confidences`, two
fits with one half of the gold hidden). The calibrated confidence of an item in one half
comes from a calibrator fitted on the other half (never on itself), so the report is honest.
Per field: the expected calibration error (10 equal-mass bins) of the raw and of the
calibrated confidence, the reliability diagram's bins (mean confidence, accuracy, count) of
both, and the calibrator in use (:func:`labelfarm.services.calibration.load_calibrators`).

:func:`reliability_svg` draws the diagram as a small SVG (no script, no style attribute).
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from labelfarm.db.tx import CoreTx, transaction
from labelfarm.ml import calibration as cal
from labelfarm.services.calibration import gold_confidences
from labelfarm.services.calibration_store import load_calibrators
from labelfarm.services.project_labels import read_project_labels
from labelfarm.services.projects import Project

__all__ = ["N_BINS", "calibration_report", "reliability_svg"]

N_BINS = 10


def _bins(confidence: np.ndarray, correct: np.ndarray) -> list[dict[str, Any]]:
    b = cal.reliability_bins(confidence, correct, n_bins=N_BINS)
    return [
        {"mean_confidence": round(float(m), 6), "accuracy": round(float(a), 6), "count": int(n)}
        for m, a, n in zip(b.mean_confidence, b.accuracy, b.count, strict=True)
    ]


def _cross_calibrated(evidence: Any) -> np.ndarray:
    """Each half's confidence through the calibrator fitted on the other half."""
    out = evidence.confidence.copy()
    for half in (0, 1):
        scored = evidence.half == half
        fitted = cal.fit_calibrator(
            evidence.confidence[~scored], evidence.correct[~scored], n_classes=evidence.n_classes
        )
        out[scored] = fitted.apply(evidence.confidence[scored])
    return np.asarray(out, dtype=np.float64)


@transaction("read")
def calibration_report(tx: CoreTx, project: Project) -> dict[str, Any]:
    """The report (see the module docstring); a field without gold has ``n_gold`` 0."""
    data = read_project_labels(tx, project.id)
    stored = load_calibrators(tx, project.id)
    fields = []
    for f in project.schema.fields:
        if f.type_name != "choice":
            continue
        ev = gold_confidences(f, data)
        calibrated = _cross_calibrated(ev) if len(ev.item_ids) else ev.confidence
        current = stored.get(f.name, cal.IDENTITY)
        fields.append(
            {
                "field": f.name,
                "n_gold": len(ev.item_ids),
                "accuracy": round(float(ev.correct.mean()), 6) if len(ev.item_ids) else None,
                "ece_raw": round(cal.expected_calibration_error(ev.confidence, ev.correct), 6),
                "ece": round(cal.expected_calibration_error(calibrated, ev.correct), 6),
                "bins_raw": _bins(ev.confidence, ev.correct),
                "bins": _bins(calibrated, ev.correct),
                "calibrator": current.to_json(),
            }
        )
    return {
        "project_id": project.id,
        "n_bins": N_BINS,
        "min_gold": cal.MIN_GOLD,
        "fields": fields,
    }


def _points(bins: list[dict[str, Any]], size: int, pad: int) -> str:
    span = size - 2 * pad
    return " ".join(
        f"{pad + span * b['mean_confidence']:.1f},{size - pad - span * b['accuracy']:.1f}"
        for b in bins
    )


def reliability_svg(field: dict[str, Any], size: int = 240) -> str:
    """One field's reliability diagram: the diagonal (perfect calibration), the raw
    confidence's bins and the calibrated ones (circles sized by count), axes 0..1."""
    pad = 28
    span = size - 2 * pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="reliability" viewBox="0 0 {size} {size}"'
        f' role="img" aria-label="reliability diagram of {escape(field["field"])}">',
        f'<rect class="frame" x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none"'
        ' stroke="currentColor" stroke-opacity="0.3"/>',
        f'<line class="ideal" x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}"'
        ' stroke="currentColor" stroke-dasharray="4 3" stroke-opacity="0.5"/>',
        f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" font-size="10"'
        ' fill="currentColor">confidence</text>',
        f'<text x="10" y="{size / 2}" text-anchor="middle" font-size="10" fill="currentColor"'
        f' transform="rotate(-90 10 {size / 2})">accuracy</text>',
    ]
    total = max(1, sum(b["count"] for b in field["bins"]))
    for key, colour in (("bins_raw", "#b45309"), ("bins", "#1d4ed8")):
        bins = field[key]
        if not bins:
            continue
        parts.append(
            f'<polyline class="{key}" points="{_points(bins, size, pad)}" fill="none"'
            f' stroke="{colour}" stroke-width="1.5"/>'
        )
        for b in bins:
            x = pad + span * b["mean_confidence"]
            y = size - pad - span * b["accuracy"]
            r = 2 + 6 * (b["count"] / total) ** 0.5
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)

"""Bounding-box math: IoU, matching against gold, and consensus of several annotators.

Boxes are ``(N, 4)`` float arrays of ``x, y, w, h`` (top-left corner, width, height, any
unit as long as it is the same for all boxes); widths and heights must be >= 0.

- :func:`iou`: the ``(N, M)`` pairwise intersection-over-union matrix;
- :func:`match_boxes`: one-to-one matching of predicted (or annotator) boxes to gold boxes,
  with precision, recall and F1;
- :func:`cluster_boxes`: groups the boxes several annotators drew on one image into objects
  (never two boxes of one annotator in one object) and averages each group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from labelfarm.ml.labels import FloatArray, IntArray, as_index_array, validate_weights

__all__ = ["BoxClusters", "BoxMatch", "cluster_boxes", "iou", "match_boxes"]


def _as_boxes(boxes: npt.ArrayLike, *, name: str) -> FloatArray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n_boxes, 4) as x, y, w, h; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr[:, 2:] < 0):
        raise ValueError(f"{name} must have widths and heights >= 0")
    return arr


def iou(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """Return the ``(N, M)`` IoU matrix of boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``.

    Two boxes with zero union (both degenerate) have IoU 0.
    """
    pa = _as_boxes(a, name="a")
    pb = _as_boxes(b, name="b")
    ax1, ay1 = pa[:, 0:1], pa[:, 1:2]
    ax2, ay2 = ax1 + pa[:, 2:3], ay1 + pa[:, 3:4]
    bx1, by1 = pb[:, 0], pb[:, 1]
    bx2, by2 = bx1 + pb[:, 2], by1 + pb[:, 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0.0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0.0, None)
    inter = iw * ih
    union = (pa[:, 2] * pa[:, 3])[:, None] + (pb[:, 2] * pb[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros(inter.shape), where=union > 0)


@dataclass(frozen=True)
class BoxMatch:
    """Matched pairs ``(pred_index, gold_index)`` with their IoU, and the scores.

    With no predictions precision is 1, with no gold recall is 1, and with neither F1 is 1
    (nothing to find and nothing wrongly found).
    """

    pairs: IntArray
    ious: FloatArray
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float


def _labels_or_zeros(labels: npt.ArrayLike | None, n: int, *, name: str) -> IntArray:
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    out = as_index_array(labels, name=name)
    if out.shape != (n,):
        raise ValueError(f"{name} must have shape (n_boxes,) = ({n},), got {out.shape}")
    return out


def match_boxes(
    pred: npt.ArrayLike,
    gold: npt.ArrayLike,
    *,
    pred_labels: npt.ArrayLike | None = None,
    gold_labels: npt.ArrayLike | None = None,
    iou_threshold: float = 0.5,
    method: Literal["hungarian", "greedy"] = "hungarian",
) -> BoxMatch:
    """Match ``pred`` ``(N, 4)`` boxes one-to-one to ``gold`` ``(M, 4)`` boxes.

    A pair is eligible when its IoU is >= ``iou_threshold`` and, if labels are given, the
    labels are equal. ``"hungarian"`` (``scipy.optimize.linear_sum_assignment``) finds the
    most matches and, among those, the largest total IoU; ``"greedy"`` takes eligible pairs
    in decreasing IoU (COCO-style).
    """
    p = _as_boxes(pred, name="pred")
    g = _as_boxes(gold, name="gold")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if method not in ("hungarian", "greedy"):
        raise ValueError(f"method must be 'hungarian' or 'greedy', got {method!r}")
    pl = _labels_or_zeros(pred_labels, p.shape[0], name="pred_labels")
    gl = _labels_or_zeros(gold_labels, g.shape[0], name="gold_labels")
    overlap = iou(p, g)
    eligible = (overlap >= iou_threshold) & (pl[:, None] == gl[None, :])
    rows: list[int] = []
    cols: list[int] = []
    if eligible.any():
        if method == "hungarian":
            # Score = big constant + IoU: more matches always beat a larger total IoU.
            big = min(p.shape[0], g.shape[0]) + 1.0
            score = np.where(eligible, big + overlap, 0.0)
            from scipy.optimize import linear_sum_assignment

            r, c = linear_sum_assignment(score, maximize=True)
            keep = eligible[r, c]
            rows, cols = r[keep].tolist(), c[keep].tolist()
        else:
            cand_r, cand_c = np.nonzero(eligible)
            order = np.argsort(-overlap[cand_r, cand_c], kind="stable")
            used_p: set[int] = set()
            used_g: set[int] = set()
            for i, j in zip(cand_r[order].tolist(), cand_c[order].tolist(), strict=True):
                if i not in used_p and j not in used_g:
                    used_p.add(i)
                    used_g.add(j)
                    rows.append(i)
                    cols.append(j)
    pairs = np.array(list(zip(rows, cols, strict=True)), dtype=np.int64).reshape(-1, 2)
    tp = len(rows)
    fp = p.shape[0] - tp
    fn = g.shape[0] - tp
    return BoxMatch(
        pairs=pairs,
        ious=overlap[pairs[:, 0], pairs[:, 1]] if tp else np.zeros(0),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
    )


@dataclass(frozen=True)
class BoxClusters:
    """Consensus objects of :func:`cluster_boxes`.

    ``boxes`` ``(C, 4)`` are weighted means of the members; ``labels`` ``(C,)`` the weighted
    plurality label (ties to the lowest); ``support`` ``(C,)`` the weight share of all
    annotators who drew a member; ``label_confidence`` ``(C,)`` the weight share of members
    agreeing with the label; ``confidence = support * label_confidence``; ``assignment``
    ``(N,)`` the cluster of each input box.
    """

    boxes: FloatArray
    labels: IntArray
    support: FloatArray
    label_confidence: FloatArray
    confidence: FloatArray
    assignment: IntArray


def cluster_boxes(
    boxes: npt.ArrayLike,
    labels: npt.ArrayLike,
    annotators: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    n_annotators: int | None = None,
    iou_threshold: float = 0.5,
) -> BoxClusters:
    """Group the boxes of several annotators on one image into consensus objects.

    ``boxes`` is ``(N, 4)``; ``labels`` and ``annotators`` are ``(N,)``; ``weights`` has one
    weight per annotator, ``(n_annotators,)``. ``n_annotators`` counts everyone who labelled
    the image, including annotators who drew no box (they lower the support); it defaults to
    ``len(weights)`` or the largest annotator index + 1.

    Annotators are visited by decreasing weight (then index). Each one's boxes are matched
    one-to-one (Hungarian, on IoU >= ``iou_threshold``, regardless of label) to the current
    consensus boxes; matched boxes join that cluster, the rest start new clusters. So a
    cluster never holds two boxes of the same annotator. Labels are voted inside a cluster.
    """
    b = _as_boxes(boxes, name="boxes")
    n = b.shape[0]
    lb = as_index_array(labels, name="labels")
    an = as_index_array(annotators, name="annotators", upper=n_annotators)
    if lb.shape != (n,) or an.shape != (n,):
        raise ValueError(
            f"labels and annotators must have shape (n_boxes,) = ({n},), got {lb.shape} "
            f"and {an.shape}"
        )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if n_annotators is None:
        n_annotators = (
            len(np.asarray(weights)) if weights is not None else int(an.max(initial=-1)) + 1
        )
    w = validate_weights(weights, n_annotators=n_annotators)
    if an.size and an.max() >= w.shape[0]:
        raise ValueError(f"annotators must be < {w.shape[0]} (one weight per annotator)")

    assignment = np.full(n, -1, dtype=np.int64)
    members: list[list[int]] = []
    order = sorted(np.unique(an).tolist(), key=lambda a: (-w[a], a))
    for a in order:
        own = np.nonzero(an == a)[0]
        matched: dict[int, int] = {}
        if members:
            centers = np.array([_weighted_mean(b[m], w[an[m]]) for m in members])
            overlap = iou(b[own], centers)
            eligible = overlap >= iou_threshold
            if eligible.any():
                score = np.where(eligible, len(own) + 1.0 + overlap, 0.0)
                from scipy.optimize import linear_sum_assignment

                r, c = linear_sum_assignment(score, maximize=True)
                matched = {int(i): int(j) for i, j in zip(r, c, strict=True) if eligible[i, j]}
        for local, idx in enumerate(own.tolist()):
            if local in matched:
                members[matched[local]].append(idx)
            else:
                members.append([idx])
            assignment[idx] = matched.get(local, len(members) - 1)
    return _summarise(b, lb, an, w, assignment, len(members))


def _weighted_mean(boxes: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted mean box; the plain mean when all weights are zero."""
    total = float(weights.sum())
    eff = weights if total > 0 else np.ones(weights.size)
    return np.asarray((eff[:, None] * boxes).sum(axis=0) / eff.sum(), dtype=np.float64)


def _summarise(
    b: FloatArray, lb: IntArray, an: IntArray, w: FloatArray, assignment: IntArray, n_clusters: int
) -> BoxClusters:
    total_weight = float(w.sum())
    n_labels = int(lb.max(initial=-1)) + 1
    out_boxes = np.zeros((n_clusters, 4))
    out_labels = np.zeros(n_clusters, dtype=np.int64)
    support = np.zeros(n_clusters)
    label_conf = np.zeros(n_clusters)
    for k in range(n_clusters):
        members = np.nonzero(assignment == k)[0]
        mw = w[an[members]]
        m_total = float(mw.sum())
        eff = mw if m_total > 0 else np.ones(members.size)
        out_boxes[k] = _weighted_mean(b[members], mw)
        votes = np.bincount(lb[members], weights=eff, minlength=n_labels)
        out_labels[k] = int(votes.argmax())
        label_conf[k] = float(votes.max() / eff.sum())
        support[k] = m_total / total_weight if total_weight > 0 else 0.0
    return BoxClusters(
        boxes=out_boxes,
        labels=out_labels,
        support=support,
        label_confidence=label_conf,
        confidence=support * label_conf,
        assignment=assignment,
    )

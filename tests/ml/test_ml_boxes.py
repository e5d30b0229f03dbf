"""Box IoU, matching and consensus clustering on hand-computed cases."""

import numpy as np
import pytest

from labelfarm.ml import cluster_boxes, iou, match_boxes


def test_iou_hand_cases():
    a = np.array([[0, 0, 2, 2], [10, 10, 1, 1]])
    b = np.array([[1, 1, 2, 2], [0, 0, 2, 2], [2, 0, 2, 2], [0, 0, 0, 0]])
    result = iou(a, b)
    assert result.shape == (2, 4)
    assert result[0, 0] == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 - 1
    assert result[0, 1] == 1.0
    assert result[0, 2] == 0.0  # touching edges
    assert result[0, 3] == 0.0  # degenerate box
    assert np.all(result[1] == 0.0)
    assert iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0
    assert iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_iou_validates_shape():
    with pytest.raises(ValueError, match=r"\(n_boxes, 4\)"):
        iou([[0, 0, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="widths and heights >= 0"):
        iou([[0, 0, -1, 1]], [[0, 0, 1, 1]])


# Boxes on a line (height 1): IoU(p0, g0) = 9/11, IoU(p0, g1) = 8/12, IoU(p1, g0) = 8/12,
# IoU(p1, g1) = 5/15.
GOLD = np.array([[0, 0, 10, 1], [3, 0, 10, 1]])
PRED = np.array([[1, 0, 10, 1], [-2, 0, 10, 1]])


def test_match_boxes_hungarian_finds_most_matches():
    result = match_boxes(PRED, GOLD, iou_threshold=0.5)
    assert {tuple(p) for p in result.pairs.tolist()} == {(0, 1), (1, 0)}
    np.testing.assert_allclose(sorted(result.ious), [8 / 12, 8 / 12])
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)


def test_match_boxes_greedy_takes_best_iou_first():
    result = match_boxes(PRED, GOLD, iou_threshold=0.5, method="greedy")
    assert result.pairs.tolist() == [[0, 0]]
    assert result.ious[0] == pytest.approx(9 / 11)
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 1, 1)
    assert result.precision == 0.5 and result.recall == 0.5 and result.f1 == 0.5


def test_match_boxes_requires_equal_labels_and_threshold():
    result = match_boxes(PRED[:1], GOLD[:1], pred_labels=[1], gold_labels=[0])
    assert result.true_positives == 0
    assert result.f1 == 0.0
    assert match_boxes(PRED[:1], GOLD[:1], iou_threshold=0.9).true_positives == 0


def test_match_boxes_empty_sides():
    none = np.zeros((0, 4))
    result = match_boxes(none, GOLD)
    assert (result.precision, result.recall, result.f1) == (1.0, 0.0, 0.0)
    result = match_boxes(none, none)
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)
    assert result.pairs.shape == (0, 2)


def test_cluster_boxes_weighted_consensus():
    boxes = np.array(
        [
            [0, 0, 10, 10],  # a0, object A
            [50, 50, 10, 10],  # a0, object B
            [2, 0, 10, 10],  # a1, object A
            [52, 50, 10, 10],  # a1, object B
            [1, 0, 10, 10],  # a2, object A, other label, double weight
        ]
    )
    labels = [0, 1, 0, 1, 1]
    annotators = [0, 0, 1, 1, 2]
    result = cluster_boxes(boxes, labels, annotators, [1.0, 1.0, 2.0])
    # a2 (heaviest) is visited first, so object A is cluster 0.
    np.testing.assert_array_equal(result.assignment, [0, 1, 0, 1, 0])
    np.testing.assert_allclose(result.boxes, [[1, 0, 10, 10], [51, 50, 10, 10]])
    # Object A: label 0 has weight 2 (a0, a1), label 1 weight 2 (a2): tie -> lowest.
    np.testing.assert_array_equal(result.labels, [0, 1])
    np.testing.assert_allclose(result.label_confidence, [0.5, 1.0])
    np.testing.assert_allclose(result.support, [1.0, 0.5])
    np.testing.assert_allclose(result.confidence, [0.5, 0.5])


def test_cluster_boxes_never_puts_one_annotators_boxes_together():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10]])
    result = cluster_boxes(boxes, [0, 0, 0], [0, 0, 1], n_annotators=4)
    assert result.assignment[0] != result.assignment[1]
    assert len(result.boxes) == 2
    # Two of four annotators (two drew nothing) support the first object.
    assert sorted(result.support.tolist()) == [0.25, 0.5]


def test_cluster_boxes_validates():
    with pytest.raises(ValueError, match=r"\(n_boxes,\)"):
        cluster_boxes([[0, 0, 1, 1]], [0, 1], [0])
    with pytest.raises(ValueError, match=r"\(n_annotators,\)"):
        cluster_boxes([[0, 0, 1, 1]], [0], [1], [1.0], n_annotators=2)
    empty = cluster_boxes(np.zeros((0, 4)), [], [], n_annotators=2)
    assert empty.boxes.shape == (0, 4)

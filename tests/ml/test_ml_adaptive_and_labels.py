"""Adaptive overlap, the long-format helpers and the exported surface of labelfarm.ml."""

import numpy as np
import pytest

import labelfarm.ml
from labelfarm.ml import count_matrix, labels_per_item, needs_more_labels, validate_annotations


def test_needs_more_labels():
    confidence = np.array([0.9, 0.5, 0.5, 0.99, np.nan, 0.5])
    n_labels = np.array([3, 3, 5, 1, 2, 0])
    mask = needs_more_labels(confidence, n_labels, target=0.8, min_labels=2, max_labels=5)
    # confident; below target; at the ceiling; under the floor; unknown; no labels yet
    np.testing.assert_array_equal(mask, [False, True, False, True, True, True])


def test_needs_more_labels_validates():
    with pytest.raises(ValueError, match=r"\(n_items,\)"):
        needs_more_labels([0.5, 0.5], [1], target=0.8, min_labels=1, max_labels=3)
    with pytest.raises(ValueError, match="min_labels <= max_labels"):
        needs_more_labels([0.5], [1], target=0.8, min_labels=4, max_labels=3)


def test_count_matrix_and_labels_per_item():
    counts = count_matrix([0, 0, 1, 2, 0], [1, 1, 0, 2, 0], n_items=4, n_classes=3)
    np.testing.assert_array_equal(counts, [[1, 2, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(labels_per_item([0, 0, 1, 2, 0], n_items=4), [3, 1, 1, 0])


def test_validate_annotations_messages():
    with pytest.raises(ValueError, match=r"1-D array of shape \(n_annotations,\)"):
        validate_annotations([[0]], [0], [0])
    with pytest.raises(ValueError, match="integer indexes"):
        validate_annotations([0.5], [0], [0])
    with pytest.raises(ValueError, match="indexes >= 0"):
        validate_annotations([-1], [0], [0])
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        validate_annotations([0], [0], [0], n_items=0)
    items, _, _ = validate_annotations([0.0, 2.0], [0, 1], [1, 1], n_items=3)
    assert items.dtype == np.int64


def test_exported_names_exist():
    for name in labelfarm.ml.__all__:
        assert hasattr(labelfarm.ml, name), name
    assert sorted(labelfarm.ml.__all__) == labelfarm.ml.__all__

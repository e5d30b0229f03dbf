"""Beta posterior of annotator accuracy, checked against scipy directly."""

import numpy as np
import pytest
from scipy import stats

from labelfarm.ml import beta_accuracy, beta_accuracy_per_class


def test_beta_accuracy_matches_scipy():
    result = beta_accuracy(8, 10)
    # Beta(1, 1) prior + 8 right, 2 wrong -> Beta(9, 3).
    assert result.mean == pytest.approx(9 / 12)
    assert result.lower == pytest.approx(stats.beta.ppf(0.05, 9, 3))
    assert result.upper == pytest.approx(stats.beta.ppf(0.95, 9, 3))
    assert result.lower < result.mean < result.upper


def test_beta_accuracy_is_vectorised_with_prior_and_level():
    k = np.array([0, 5, 50])
    n = np.array([0, 5, 60])
    result = beta_accuracy(k, n, prior=(2.0, 1.0), credible=0.8)
    a, b = 2.0 + k, 1.0 + n - k
    np.testing.assert_allclose(result.mean, a / (a + b))
    np.testing.assert_allclose(result.lower, stats.beta.ppf(0.1, a, b))
    np.testing.assert_allclose(result.upper, stats.beta.ppf(0.9, a, b))
    # More evidence, narrower interval.
    width = result.upper - result.lower
    assert width[2] < width[1] < width[0]


def test_beta_accuracy_validates():
    with pytest.raises(ValueError, match="same shape"):
        beta_accuracy([1, 2], [3])
    with pytest.raises(ValueError, match="0 <= n_correct <= n_total"):
        beta_accuracy(5, 4)
    with pytest.raises(ValueError, match="prior"):
        beta_accuracy(1, 2, prior=(0.0, 1.0))
    with pytest.raises(ValueError, match="credible"):
        beta_accuracy(1, 2, credible=1.0)


def test_beta_accuracy_per_class():
    annotators = [0, 0, 0, 1, 1, 0]
    true_classes = [0, 0, 1, 1, 1, 0]
    correct = [True, False, True, True, True, True]
    result = beta_accuracy_per_class(annotators, true_classes, correct, n_annotators=3, n_classes=2)
    assert result.mean.shape == (3, 2)
    np.testing.assert_array_equal(result.n_total, [[3, 1], [0, 2], [0, 0]])
    np.testing.assert_array_equal(result.n_correct, [[2, 1], [0, 2], [0, 0]])
    assert result.mean[0, 0] == pytest.approx(3 / 5)
    assert result.lower[1, 1] == pytest.approx(stats.beta.ppf(0.05, 3, 1))
    assert result.mean[2, 0] == pytest.approx(0.5)  # no results: the prior
    with pytest.raises(ValueError, match=r"same shape \(n_results,\)"):
        beta_accuracy_per_class([0], [0, 1], [True], n_annotators=1, n_classes=2)
    with pytest.raises(ValueError, match="booleans"):
        beta_accuracy_per_class([0], [0], [0.5], n_annotators=1, n_classes=2)

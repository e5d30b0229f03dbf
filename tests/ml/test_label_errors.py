"""Label-error ranking on constructed data: confident learning finds flipped labels, and
the annotators' reliability moves an item up or down the list."""

from __future__ import annotations

import numpy as np
import pytest

from labelfarm.ml.label_errors import (
    confident_joint,
    confident_thresholds,
    detect_label_errors,
    noise_channel,
    noise_rate_issues,
)


def noisy_problem(n: int = 600, k: int = 3, flips: int = 30, seed: int = 0):
    """A model that is right and fairly confident about the true class; ``flips`` labels
    changed to another class. Returns probabilities, given labels, the truth and the flips."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(k, size=n)
    logits = rng.normal(0, 0.6, size=(n, k))
    logits[np.arange(n), truth] += 5.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(n, size=flips, replace=False)
    labels[flipped] = (truth[flipped] + 1 + rng.integers(k - 1, size=flips)) % k
    return proba, labels, truth, flipped


def test_thresholds_are_the_mean_self_confidence_per_class():
    proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    assert confident_thresholds(proba, labels) == pytest.approx([0.8, 0.6])
    # an item labelled 1 whose p(0) clears class 0's threshold? 0.6 < 0.8: not counted off
    # the diagonal; the confident joint keeps every class's row total (calibrated)
    joint = confident_joint(proba, labels)
    assert joint.sum(axis=1).tolist() == [2, 2]


def test_a_flipped_label_with_a_confident_model_is_found():
    proba, labels, truth, flipped = noisy_problem()
    mask = noise_rate_issues(proba, labels)
    found = detect_label_errors(proba, labels)
    wrong = labels != truth
    for flags in (mask, found.is_issue):
        hits = (flags & wrong).sum()
        assert hits >= 0.8 * wrong.sum(), "most flips are found"
        assert hits >= 0.9 * flags.sum(), "and what is flagged is a flip"
    # the score ranks flips first: the top 20 are all flips
    top = np.argsort(-found.score)[:20]
    assert set(top) <= set(flipped)
    assert found.model_class[top].tolist() == truth[top].tolist()
    assert np.all((found.score >= 0) & (found.score <= 1))


def test_the_noise_channel_is_the_estimated_label_noise():
    proba, labels, _truth, _ = noisy_problem(n=3000, flips=300)
    channel = noise_channel(proba, labels)
    assert channel.sum(axis=1) == pytest.approx(np.ones(3))
    assert np.diagonal(channel).mean() == pytest.approx(0.9, abs=0.04)


def annotators(k: int, accuracies: list[float]) -> np.ndarray:
    out = np.empty((len(accuracies), k, k))
    for a, acc in enumerate(accuracies):
        out[a] = (1 - acc) / (k - 1)
        np.fill_diagonal(out[a], acc)
    return out


def test_one_unreliable_annotator_ranks_above_several_reliable_ones_who_agree():
    """Two items labelled "shirt" (class 1), the model says "coat" (class 0) with 0.97 on
    both: one backed by a single unreliable annotator, one by three reliable ones."""
    proba, labels, _truth, _ = noisy_problem(n=300)
    proba = np.vstack([proba, [[0.97, 0.02, 0.01], [0.97, 0.02, 0.01]]])
    labels = np.concatenate([labels, [1, 1]])
    n = len(labels)
    lone, backed = n - 2, n - 1
    confusion = annotators(3, [0.61, 0.95, 0.96, 0.97])
    # everyone else: one vote each from the reliable annotators, for the given label
    items = [*range(n - 2), lone, backed, backed, backed]
    who = [*(1 + i % 3 for i in range(n - 2)), 0, 1, 2, 3]
    said = [*labels[: n - 2], 1, 1, 1, 1]
    found = detect_label_errors(proba, labels, votes=(items, who, said), confusion=confusion)
    assert found.score[lone] > found.score[backed]
    assert found.is_issue[lone] and not found.is_issue[backed]
    assert found.score[lone] > 0.5 > found.score[backed]
    assert found.n_votes[lone] == 1 and found.n_votes[backed] == 3
    assert found.agreement[lone] == 1.0 and found.label_reliability[lone] == pytest.approx(0.61)
    assert found.model_class[lone] == 0 and found.model_confidence[lone] == pytest.approx(0.97)
    # without the annotators both items look the same to the model alone
    alone = detect_label_errors(proba, labels)
    assert alone.score[lone] == pytest.approx(alone.score[backed])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="proba"):
        detect_label_errors(np.ones(3), [0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        detect_label_errors(np.full((2, 2), 0.5), [0, 2])
    with pytest.raises(ValueError, match="confusion"):
        detect_label_errors(np.full((2, 2), 0.5), [0, 1], votes=([0], [0], [1]))
    with pytest.raises(ValueError, match="threshold"):
        detect_label_errors(np.full((2, 2), 0.5), [0, 1], threshold=1.5)

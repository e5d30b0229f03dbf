"""Majority vote and Dawid-Skene: hand-computed cases and simulated crowds."""

import numpy as np
import pytest

from labelfarm.ml import dawid_skene, get_annotator_accuracy, majority_vote


def test_majority_vote_counts_and_confidence():
    items = [0, 0, 0, 1, 1]
    annotators = [0, 1, 2, 0, 1]
    labels = [2, 2, 1, 0, 1]
    out, conf = majority_vote(items, annotators, labels, n_items=3, n_classes=3)
    # item 1 is a tie between 0 and 1: the lowest class index wins.
    np.testing.assert_array_equal(out, [2, 0, -1])
    np.testing.assert_allclose(conf, [2 / 3, 0.5, 0.0])


def test_majority_vote_weights_per_annotator():
    out, conf = majority_vote(
        [0, 0, 0], [0, 1, 2], [1, 1, 0], n_items=1, n_classes=2, weights=[1.0, 1.0, 3.0]
    )
    assert out[0] == 0
    assert conf[0] == pytest.approx(0.6)


def test_majority_vote_random_tiebreak_picks_a_tied_class():
    seen = set()
    for seed in range(20):
        out, _ = majority_vote(
            [0, 0, 0, 0],
            [0, 1, 2, 3],
            [1, 3, 1, 3],
            n_items=1,
            n_classes=4,
            rng_tiebreak=np.random.default_rng(seed),
        )
        seen.add(int(out[0]))
    assert seen == {1, 3}


def test_majority_vote_validates_shapes():
    with pytest.raises(ValueError, match=r"same shape \(n_annotations,\)"):
        majority_vote([0, 1], [0], [0, 1], n_items=2, n_classes=2)
    with pytest.raises(ValueError, match="labels must hold indexes < 2"):
        majority_vote([0], [0], [2], n_items=1, n_classes=2)
    with pytest.raises(ValueError, match=r"\(n_annotators,\)"):
        majority_vote([0], [3], [0], n_items=1, n_classes=2, weights=[1.0])


def test_dawid_skene_one_round_by_hand():
    # item 0: both annotators say 0; item 1: annotator 0 says 0, annotator 1 says 1.
    # prior_strength 2, prior_accuracy 0.75: pseudo-count rows [1.5, 0.5] and [0.5, 1.5].
    result = dawid_skene(
        [0, 0, 1, 1],
        [0, 1, 0, 1],
        [0, 0, 0, 1],
        n_items=2,
        n_classes=2,
        n_annotators=2,
        prior_strength=2.0,
        prior_accuracy=0.75,
        fit_prior=False,  # the fixed prior and no balance damping: the arithmetic by hand
        balance_damping=0.0,
        balance_tolerance=None,
        class_prior_strength=1.0,
        max_iter=1,
    )
    # Start (soft majority vote): T0 = [1, 0], T1 = [0.5, 0.5].
    # Class priors: ([1.5, 0.5] + 1) / 4.
    np.testing.assert_allclose(result.class_priors, [0.625, 0.375])
    # Annotator 0: row 0 = [1.5 + 1.5, 0 + 0.5] / 3.5; row 1 = [0.5 + 0.5, 0 + 1.5] / 2.5.
    # Annotator 1: row 0 = [1 + 1.5, 0.5 + 0.5] / 3.5; row 1 = [0 + 0.5, 0.5 + 1.5] / 2.5.
    np.testing.assert_allclose(result.confusion[0], [[6 / 7, 1 / 7], [0.4, 0.6]])
    np.testing.assert_allclose(result.confusion[1], [[5 / 7, 2 / 7], [0.2, 0.8]])
    item0 = np.array([0.625 * 6 / 7 * 5 / 7, 0.375 * 0.4 * 0.2])
    item1 = np.array([0.625 * 6 / 7 * 2 / 7, 0.375 * 0.4 * 0.8])
    np.testing.assert_allclose(result.posteriors[0], item0 / item0.sum())
    np.testing.assert_allclose(result.posteriors[1], item1 / item1.sum())
    np.testing.assert_array_equal(result.labels, [0, 0])
    assert result.n_iter == 1


def _simulate_crowd(seed: int, n_items: int = 300, n_classes: int = 3):
    """Three mediocre annotators (60 % right), a spammer who always answers 0 and a
    confusing annotator who systematically swaps classes 1 and 2."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    items, annotators, labels = [], [], []
    swap = np.array([0, 2, 1])
    for a in range(5):
        for i in range(n_items):
            t = int(truth[i])
            if a < 3:
                wrong = [c for c in range(n_classes) if c != t]
                label = t if rng.random() < 0.6 else int(rng.choice(wrong))
            elif a == 3:
                label = 0
            else:
                label = int(swap[t]) if rng.random() < 0.95 else int(rng.integers(n_classes))
            items.append(i)
            annotators.append(a)
            labels.append(label)
    return truth, np.array(items), np.array(annotators), np.array(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_beats_majority_vote_with_spammer_and_confuser(seed):
    truth, items, annotators, labels = _simulate_crowd(seed)
    mv, _ = majority_vote(items, annotators, labels, n_items=300, n_classes=3)
    ds = dawid_skene(items, annotators, labels, n_items=300, n_classes=3, n_annotators=5)
    mv_acc = float(np.mean(mv == truth))
    ds_acc = float(np.mean(ds.labels == truth))
    assert ds_acc > 0.88
    assert ds_acc > mv_acc + 0.25
    # It learned who is who: the spammer answers 0 whatever the truth ...
    np.testing.assert_allclose(ds.confusion[3][:, 0], 1.0, atol=0.05)
    # ... and the confuser's swap is in its confusion matrix.
    assert ds.confusion[4][1, 2] > 0.8 and ds.confusion[4][2, 1] > 0.8
    accuracy = get_annotator_accuracy(ds.confusion, class_priors=ds.class_priors)
    assert np.all(accuracy[:3] > 0.5) and np.all(accuracy[3:] < 0.45)
    np.testing.assert_allclose(ds.posteriors.sum(axis=1), 1.0)
    assert np.all((ds.confidence >= 0) & (ds.confidence <= 1))


def test_dawid_skene_gold_is_clamped_and_breaks_symmetry():
    # Two annotators who always disagree: without gold nothing tells them apart.
    n = 20
    truth = np.arange(n) % 2
    items = np.repeat(np.arange(n), 2)
    annotators = np.tile([0, 1], n)
    labels = np.stack([1 - truth, truth], axis=1).ravel()  # annotator 1 is right
    gold = {0: 0, 1: 1, 2: 0, 3: 1}
    result = dawid_skene(
        items, annotators, labels, n_items=n, n_classes=2, n_annotators=2, gold=gold
    )
    np.testing.assert_array_equal(result.labels, truth)
    np.testing.assert_allclose(result.posteriors[:4], np.eye(2)[truth[:4]])
    accuracy = get_annotator_accuracy(result.confusion)
    assert accuracy[1] > 0.8 > 0.2 > accuracy[0]
    # The array form of gold (-1 for unknown) gives the same answer.
    gold_array = np.full(n, -1)
    gold_array[:4] = truth[:4]
    same = dawid_skene(
        items, annotators, labels, n_items=n, n_classes=2, n_annotators=2, gold=gold_array
    )
    np.testing.assert_allclose(same.posteriors, result.posteriors)


def test_dawid_skene_gold_contradicting_every_label_still_wins():
    result = dawid_skene(
        [0, 0, 0], [0, 1, 2], [1, 1, 1], n_items=1, n_classes=2, n_annotators=3, gold={0: 0}
    )
    assert result.labels[0] == 0
    assert result.confidence[0] == 1.0


def test_dawid_skene_shrinks_few_label_annotators_towards_prior():
    # Annotators 0-2 label 30 items and agree; newcomer 3 labels one item, wrongly.
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 30)
    items = np.concatenate([np.tile(np.arange(30), 3), [0]])
    annotators = np.concatenate([np.repeat([0, 1, 2], 30), [3]])
    labels = np.concatenate([np.tile(truth, 3), [1 - truth[0]]])
    kwargs = {"n_items": 30, "n_classes": 2, "n_annotators": 4}
    # the fixed prior (fit_prior=False): its arithmetic checked by hand
    shrunk = dawid_skene(items, annotators, labels, fit_prior=False, **kwargs)
    raw = dawid_skene(items, annotators, labels, prior_strength=0.0, fit_prior=False, **kwargs)
    t = int(truth[0])
    # Without a prior one wrong label makes the newcomer "always wrong" on that class ...
    assert raw.confusion[3][t, t] < 0.01
    # ... with it, the row is (pseudo-counts + one wrong label) / 3: the diagonal gets
    # 0.7 * 2 = 1.4 of 3, close to the prior accuracy 0.7 rather than to 0.
    assert shrunk.confusion[3][t, t] == pytest.approx(1.4 / 3, abs=1e-3)
    # The newcomer's untested class stays at the prior.
    assert shrunk.confusion[3][1 - t, 1 - t] == pytest.approx(0.7, abs=1e-3)
    np.testing.assert_array_equal(shrunk.labels, truth)


def test_dawid_skene_unlabelled_items_get_class_prior():
    result = dawid_skene([0, 1, 2], [0, 0, 0], [0, 0, 1], n_items=4, n_classes=2, n_annotators=1)
    np.testing.assert_allclose(result.posteriors[3], result.class_priors)
    assert result.labels[3] == -1
    assert result.confidence[3] == 0.0
    assert result.converged


def test_dawid_skene_validates_inputs():
    with pytest.raises(ValueError, match="annotators must hold indexes < 1"):
        dawid_skene([0], [1], [0], n_items=1, n_classes=2, n_annotators=1)
    with pytest.raises(ValueError, match=r"shape \(n_items,\)"):
        dawid_skene([0], [0], [0], n_items=1, n_classes=2, n_annotators=1, gold=[0, 1])
    with pytest.raises(ValueError, match="gold class 5"):
        dawid_skene([0], [0], [0], n_items=1, n_classes=2, n_annotators=1, gold={0: 5})


def test_get_annotator_accuracy_validates_shape():
    with pytest.raises(ValueError, match=r"\(n_annotators, n_classes, n_classes\)"):
        get_annotator_accuracy(np.eye(2))
    np.testing.assert_allclose(
        get_annotator_accuracy([[[0.9, 0.1], [0.3, 0.7]]], class_priors=[0.5, 0.5]), [0.8]
    )


def test_dawid_skene_gold_array_values_are_checked():
    with pytest.raises(ValueError, match=r"0\.\.1, or -1 for unknown"):
        dawid_skene([0], [0], [0], n_items=1, n_classes=2, n_annotators=1, gold=np.array([2]))

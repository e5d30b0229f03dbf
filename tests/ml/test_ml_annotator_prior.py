"""Dawid-Skene with the annotators' prior fitted from the data (empirical Bayes) and the class
balance damped towards the majority vote's: simulated crowds and one real crowd (Snow et al.
2008's temporal ordering task, from ../shared/fixtures/crowd when it is there)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from labelfarm.ml import dawid_skene, majority_vote
from labelfarm.ml.annotator_prior import STRENGTH_GRID, fit_annotator_prior, fixed_prior
from labelfarm.ml.class_balance import BALANCE_TOLERANCE, limit_class_balance, total_variation
from labelfarm.ml.labels import count_matrix

CROWD = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "crowd" / "snow2008"


def _biased_crowd(seed: int, n_items: int = 108, n_annotators: int = 39):
    """A crowd that says "1" too often (high sensitivity, low specificity), truth ~56% 1s,
    three labels per item: the case where a fixed symmetric prior collapses the balance."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.56).astype(np.int64)
    sens = np.clip(rng.beta(8, 2, n_annotators), 0.3, 0.99)
    spec = np.clip(rng.beta(2.5, 2, n_annotators), 0.05, 0.99)
    rows = []
    for i in range(n_items):
        for a in rng.permutation(n_annotators)[:3]:
            says_one = rng.random() < (sens[a] if truth[i] else 1.0 - spec[a])
            rows.append((i, int(a), int(says_one)))
    return truth, np.array(rows, dtype=np.int64)


def test_the_prior_strength_follows_how_alike_the_annotators_are():
    base = fixed_prior(2, 2.0, 0.7).pseudo_counts
    alike = np.tile(np.array([[18.0, 2.0], [2.0, 18.0]]), (30, 1, 1))  # all 90% right
    rng = np.random.default_rng(0)
    acc = rng.choice([0.55, 0.99], 30)  # half coin-flippers, half nearly perfect
    unlike = np.stack([[[20 * a, 20 * (1 - a)], [20 * (1 - a), 20 * a]] for a in acc])
    strong = fit_annotator_prior(alike, base=base)
    weak = fit_annotator_prior(unlike, base=base)
    assert strong.strength.min() >= 100  # alike: each row stays near the population's
    assert weak.strength.max() <= 10  # unlike: each row follows its own counts
    assert strong.mean[0, 0] == pytest.approx((18 * 30 * 2 + 2.8) / (20 * 30 * 2 + 4), abs=1e-9)
    np.testing.assert_allclose(strong.mean.sum(axis=1), 1.0)
    # no annotator with two labels in a row: nothing says they differ, the most pooling
    lone = fit_annotator_prior(np.zeros((3, 2, 2)), base=base)
    assert np.all(lone.strength == STRENGTH_GRID[-1])


@pytest.mark.parametrize("seed", range(4))
def test_a_biased_sparse_crowd_does_not_collapse_the_class_balance(seed):
    truth, long = _biased_crowd(seed)
    kwargs = {"n_items": len(truth), "n_classes": 2, "n_annotators": 39}
    fitted = dawid_skene(long[:, 0], long[:, 1], long[:, 2], **kwargs)
    old = dawid_skene(
        long[:, 0], long[:, 1], long[:, 2], fit_prior=False, balance_damping=0.0, **kwargs
    )
    mv, _ = majority_vote(long[:, 0], long[:, 1], long[:, 2], n_items=len(truth), n_classes=2)
    soft_mv = count_matrix(long[:, 0], long[:, 2], n_items=len(truth), n_classes=2)
    soft_mv = (soft_mv / soft_mv.sum(axis=1, keepdims=True)).mean(axis=0)
    # the old fixed prior pushes "1" beyond the majority vote's share ...
    assert old.labels.mean() > mv.mean() + 0.03
    # ... now the balance is checked: within the tolerance of the majority vote's, and the
    # hard labels never collapse onto one class
    balance = fitted.posteriors.mean(axis=0)
    assert total_variation(balance, soft_mv) <= BALANCE_TOLERANCE + 1e-6
    assert fitted.labels.mean() <= mv.mean() + 0.12
    assert np.mean(fitted.labels == truth) >= np.mean(old.labels == truth)


def test_the_balance_check_shifts_only_beyond_the_tolerance():
    rng = np.random.default_rng(3)
    post = rng.dirichlet([0.3, 0.3, 0.3], 500)
    inside = post.mean(axis=0) + np.array([0.04, -0.04, 0.0])
    np.testing.assert_array_equal(limit_class_balance(post, inside), np.ones(3))
    reference = np.array([0.6, 0.3, 0.1])
    weights = limit_class_balance(post, reference, tolerance=0.05)
    shifted = post * weights
    shifted /= shifted.sum(axis=1, keepdims=True)
    assert total_variation(shifted.mean(axis=0), reference) == pytest.approx(0.05, abs=1e-4)


def _read_tsv(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with path.open(newline="") as fh:
        rows = [
            (r["orig_id"], r["!amt_worker_ids"], r["response"], r["gold"])
            for r in csv.DictReader(fh, delimiter="\t")
        ]
    items = {i: n for n, i in enumerate(dict.fromkeys(r[0] for r in rows))}
    workers = {w: n for n, w in enumerate(dict.fromkeys(r[1] for r in rows))}
    classes = {c: k for k, c in enumerate(sorted({r[2] for r in rows} | {r[3] for r in rows}))}
    truth = np.zeros(len(items), dtype=np.int64)
    for i, _, _, g in rows:
        truth[items[i]] = classes[g]
    long = np.array([(items[i], workers[w], classes[lb]) for i, w, lb, _ in rows])
    return truth, long, len(workers)


def _three_per_item(long: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shuffled = long[rng.permutation(len(long))]
    grouped = shuffled[np.argsort(shuffled[:, 0], kind="stable")]
    rank = np.arange(len(grouped)) - np.searchsorted(grouped[:, 0], grouped[:, 0])
    return grouped[rank < 3]


def test_real_crowd_at_three_labels_per_item():
    path = CROWD / "temp.standardized.tsv"
    if not path.exists():
        pytest.skip(f"the real crowd fixture {path} is absent (see ../shared/fixtures/crowd)")
    truth, long, n_annotators = _read_tsv(path)
    truth_share = truth.mean()
    accuracy, majority, gaps = [], [], []
    for seed in range(5):
        sub = _three_per_item(long, np.random.default_rng(seed))
        kwargs = {"n_items": len(truth), "n_classes": 2}
        ds = dawid_skene(sub[:, 0], sub[:, 1], sub[:, 2], n_annotators=n_annotators, **kwargs)
        mv, _ = majority_vote(
            sub[:, 0], sub[:, 1], sub[:, 2], rng_tiebreak=np.random.default_rng(seed), **kwargs
        )
        accuracy.append(np.mean(ds.labels == truth))
        majority.append(np.mean(mv == truth))
        gaps.append(abs(ds.labels.mean() - truth_share))
    assert max(gaps) < 0.06  # the class balance stays near the truth's (44% / 56%)
    assert np.mean(accuracy) >= 0.89  # crowd-kit's DS: 0.894 on these draws' kind
    assert np.mean(accuracy) > np.mean(majority) + 0.03

"""The auto-accept threshold search (labelfarm.ml.auto_accept): Clopper-Pearson bounds, no
threshold on thin evidence, the search stopping at its first failure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom

from labelfarm.ml.auto_accept import (
    accepted_mask,
    class_threshold,
    clopper_pearson_lower,
    clopper_pearson_upper,
    min_evidence,
    search_thresholds,
)


@pytest.mark.parametrize(
    ("correct", "n", "expected"),
    [
        (8, 10, 0.4930987),  # R: binom.test(8, 10, alternative = "greater")$conf.int[1]
        (10, 10, 0.7411344),  # all right: alpha ** (1 / n)
        (95, 100, 0.8977466),
        (149, 149, 0.9800952),
        (148, 149, 0.9685592),
    ],
)
def test_the_lower_bound_matches_reference_values(correct, n, expected):
    assert clopper_pearson_lower(correct, n) == pytest.approx(expected, abs=1e-7)
    # and its definition: the p at which P(X >= correct | n, p) = alpha
    root = brentq(lambda p: binom.sf(correct - 1, n, p) - 0.05, 1e-12, 1 - 1e-12, xtol=1e-14)
    assert clopper_pearson_lower(correct, n) == pytest.approx(root, abs=1e-9)


def test_bounds_at_the_edges_and_bad_counts():
    assert clopper_pearson_lower(0, 10) == 0.0 and clopper_pearson_lower(0, 0) == 0.0
    assert clopper_pearson_upper(10, 10) == 1.0
    assert clopper_pearson_upper(0, 10) == pytest.approx(1 - 0.05 ** (1 / 10))
    assert clopper_pearson_lower(5, 10) < 0.5 < clopper_pearson_upper(5, 10)
    with pytest.raises(ValueError, match="correct <= n"):
        clopper_pearson_lower(11, 10)


def test_a_98_percent_target_takes_about_150_correct_predictions():
    assert min_evidence(0.98) == 149  # the "about 150"
    assert clopper_pearson_lower(148, 148) < 0.98 <= clopper_pearson_lower(149, 149)
    assert min_evidence(0.9) == 29


def test_no_threshold_on_thin_evidence():
    conf = np.linspace(0.999, 0.99, 148)  # 148 right predictions: one short
    found = class_threshold(conf, np.ones(148, bool), 0.98)
    assert found.threshold is None and found.tested == 0
    assert (found.n, found.correct) == (148, 148) and found.lower < 0.98
    more = class_threshold(np.linspace(0.999, 0.99, 149), np.ones(149, bool), 0.98)
    assert more.threshold == pytest.approx(0.99) and more.lower >= 0.98


def test_the_search_stops_at_the_first_failure():
    # 200 right above 0.9, then a block of 20 wrong, then 2000 right: going on past the
    # failure would pass again further down, fixed-sequence testing must not
    conf = np.r_[
        np.linspace(0.99, 0.9, 200), np.linspace(0.899, 0.89, 20), np.linspace(0.88, 0.5, 2000)
    ]
    right = np.r_[np.ones(200, bool), np.zeros(20, bool), np.ones(2000, bool)]
    assert clopper_pearson_lower(2200, 2220) >= 0.98  # the lowest threshold alone would pass
    found = class_threshold(conf, right, 0.98, start_share=0.0)
    assert found.threshold is not None and found.threshold >= 0.9
    assert found.tested < 200  # it stopped inside the wrong block
    assert found.correct == found.n and found.n >= 149
    last_pass = found.n
    # the candidate right after the accepted one (one more prediction, a wrong one) fails
    assert clopper_pearson_lower(last_pass, last_pass + 1) < 0.98


def test_ties_are_kept_together_and_the_order_of_input_does_not_matter():
    rng = np.random.default_rng(1)
    conf = np.round(rng.uniform(0.9, 1.0, 600), 2)  # many ties
    right = rng.random(600) < 0.995
    a = class_threshold(conf, right, 0.9)
    order = rng.permutation(600)
    b = class_threshold(conf[order], right[order], 0.9)
    assert a == b and a.threshold is not None
    assert a.n == int((conf >= a.threshold).sum())  # every tie of the threshold counted
    assert a.correct == int(right[conf >= a.threshold].sum())


def test_per_class_search_and_acceptance():
    rng = np.random.default_rng(7)
    n = 3000
    truth = rng.integers(0, 3, n)
    # class 0 predictions are often wrong, class 1 is rarely predicted (too little evidence),
    # class 2 predictions are always right
    predicted = truth.copy()
    predicted[truth == 2] = rng.choice([0, 2], (truth == 2).sum())
    predicted[(truth == 1) & (rng.random(n) < 0.99)] = 0
    proba = np.full((n, 3), 0.01)
    proba[np.arange(n), predicted] = rng.uniform(0.6, 0.98, n)
    found = search_thresholds(proba, truth, 0.9)
    assert [f.cls for f in found] == [0, 1, 2]
    assert found[0].threshold is None and found[0].precision < 0.8
    assert found[1].threshold is None and found[1].n < 29  # too little evidence
    assert found[2].threshold is not None  # class 2 predictions are always right
    for f in found:
        if f.threshold is not None:
            assert f.lower >= 0.9 and f.precision is not None and f.precision >= f.lower
    bars = {f.cls: f.threshold for f in found if f.threshold is not None}
    mask = accepted_mask(proba, bars)
    pred = proba.argmax(1)
    assert not mask[pred == 1].any()
    assert mask.sum() == sum(
        int(((pred == c) & (proba.max(1) >= t)).sum()) for c, t in bars.items()
    )
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        search_thresholds(proba[:, 0], truth, 0.9)


def test_one_wrong_label_at_the_very_top_does_not_end_the_search():
    conf = np.linspace(0.999, 0.9, 1000)
    right = np.ones(1000, bool)
    right[3] = False  # e.g. a mislabelled item the model is sure of
    assert class_threshold(conf, right, 0.98, start_share=0.0).threshold is None
    found = class_threshold(conf, right, 0.98)  # the first test keeps 30% of the predictions
    assert found.threshold is not None and found.n == 1000 and found.lower >= 0.98


def test_the_sequence_of_tests_is_fixed_by_the_confidences_alone():
    conf = np.linspace(0.999, 0.5, 1000)  # 1000 distinct confidences: 1000 candidates
    # the first test keeps 300 predictions (30%), the last all 1000: 701 tests in all
    every = class_threshold(conf, np.ones(1000, bool), 0.98)
    assert every.tested == 701 and every.n == 1000 and every.threshold == pytest.approx(0.5)
    # whatever the labels, the first test is at the same place: with 300 wrong predictions
    # at the top it is the only test, and it fails; with the wrong ones below the first 300,
    # the tests go on from there and stop at the first failure further down
    right = np.ones(1000, bool)
    right[:300] = False
    assert class_threshold(conf, right, 0.98).tested == 1
    right = np.ones(1000, bool)
    right[600:] = False
    late = class_threshold(conf, right, 0.98)
    assert late.threshold is not None and late.tested == late.n - 300 + 2
    assert late.correct == 600 <= late.n and late.lower >= 0.98  # a few wrong ones pass
    assert clopper_pearson_lower(600, late.n + 1) < 0.98  # the next test is the failure

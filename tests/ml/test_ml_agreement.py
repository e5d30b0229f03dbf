"""Agreement coefficients against published worked examples and hand-computed cases."""

import numpy as np
import pytest

from labelfarm.ml import (
    cohen_kappa,
    fleiss_kappa,
    get_item_agreement_scores,
    krippendorff_alpha,
    pairwise_agreement,
    specific_agreement,
    to_reliability_data,
)

nan = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers x 12 units, values 1..5, with missing data.
KRIPPENDORFF_4X12 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
)

# Fleiss (1971) / Wikipedia worked example: 10 subjects, 5 categories, 14 raters each.
FLEISS_EXAMPLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


@pytest.mark.parametrize(
    ("level", "expected"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_alpha_published_4x12_example(level, expected):
    assert krippendorff_alpha(KRIPPENDORFF_4X12, level=level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_alpha_published_binary_two_observers():
    # Section A of the same paper: binary data, two observers, no missing data.
    data = np.array([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]])
    # o_00 = 10, o_01 = o_10 = 4, o_11 = 2, n = 20: alpha = 1 - 19 * 8 / (2 * 14 * 6) = 2/21
    assert krippendorff_alpha(data) == pytest.approx(2 / 21)
    assert round(krippendorff_alpha(data), 3) == 0.095


def test_krippendorff_alpha_perfect_and_undefined():
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]]) == pytest.approx(1.0)
    # No variation at all, or no unit with two values: alpha is undefined.
    assert np.isnan(krippendorff_alpha([[1, 1, 1], [1, 1, 1]]))
    assert np.isnan(krippendorff_alpha([[1, nan], [nan, 2]]))


def test_krippendorff_alpha_from_long_format_matches_matrix():
    annotators, units = np.nonzero(~np.isnan(KRIPPENDORFF_4X12))
    values = KRIPPENDORFF_4X12[annotators, units].astype(int)
    matrix = to_reliability_data(units, annotators, values, n_items=12, n_annotators=4)
    np.testing.assert_array_equal(matrix, KRIPPENDORFF_4X12)
    assert krippendorff_alpha(matrix) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_validates_input():
    with pytest.raises(ValueError, match=r"\(n_annotators, n_units\)"):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(ValueError, match="level must be one of"):
        krippendorff_alpha(KRIPPENDORFF_4X12, level="circular")  # type: ignore[arg-type]


def test_fleiss_kappa_published_example():
    result = fleiss_kappa(FLEISS_EXAMPLE)
    assert result.p_observed == pytest.approx(0.378, abs=5e-4)
    assert result.p_expected == pytest.approx(0.213, abs=5e-4)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)


def test_fleiss_per_category_kappas_combine_to_overall():
    # Fleiss (1971): kappa = sum_j p_j q_j kappa_j / sum_j p_j q_j.
    result = fleiss_kappa(FLEISS_EXAMPLE)
    p = FLEISS_EXAMPLE.sum(axis=0) / FLEISS_EXAMPLE.sum()
    pq = p * (1 - p)
    assert (pq * result.per_category).sum() / pq.sum() == pytest.approx(result.kappa)
    # Category 1 (first column) by hand: 1 - sum n(14-n) / (N m (m-1) p q)
    x = FLEISS_EXAMPLE[:, 0]
    by_hand = 1 - (x * (14 - x)).sum() / (10 * 14 * 13 * pq[0])
    assert result.per_category[0] == pytest.approx(by_hand)


def test_fleiss_kappa_needs_equal_raters():
    with pytest.raises(ValueError, match="same number of raters"):
        fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"\(n_items, n_categories\)"):
        fleiss_kappa([1, 2, 3])


def test_cohen_kappa_textbook_example():
    # 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))
    with pytest.raises(ValueError, match=r"\(n_shared,\)"):
        cohen_kappa([0, 1], [0])


def test_specific_agreement_two_raters():
    # Same 2x2 table as above as counts (no, yes): positive agreement 2a/(2a+b+c).
    counts = np.array([[0, 2]] * 20 + [[1, 1]] * 15 + [[2, 0]] * 15)
    result = specific_agreement(counts)
    assert result[1] == pytest.approx(40 / 55)
    assert result[0] == pytest.approx(30 / 45)
    assert np.isnan(specific_agreement([[1, 0, 0], [2, 0, 0]])[1])


def test_item_agreement_scores():
    scores = get_item_agreement_scores([[2, 1, 0], [3, 0, 0], [1, 0, 0]])
    assert scores[0] == pytest.approx(1 / 3)
    assert scores[1] == 1.0
    assert np.isnan(scores[2])


def test_pairwise_agreement_hand_case():
    # annotator 0 and 1 share items 0, 1, 2 and agree on 0, 1; annotator 2 shares item 2 with both.
    items = [0, 1, 2, 0, 1, 2, 2, 3]
    annotators = [0, 0, 0, 1, 1, 1, 2, 2]
    labels = [1, 0, 2, 1, 0, 1, 2, 0]
    result = pairwise_agreement(items, annotators, labels, n_annotators=4)
    assert result.n_shared[0, 1] == result.n_shared[1, 0] == 3
    assert result.agreement[0, 1] == pytest.approx(2 / 3)
    assert result.agreement[0, 2] == 1.0
    assert result.agreement[1, 2] == 0.0
    assert result.n_shared[2, 2] == 2
    assert np.isnan(result.agreement[3, 0])  # annotator 3 labelled nothing
    with pytest.raises(ValueError, match="at most once"):
        pairwise_agreement([0, 0], [1, 1], [0, 1], n_annotators=2)

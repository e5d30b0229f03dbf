"""Word-level differences between transcripts: the alignment the word error rate counts,
each side shown as written, and correct for Tamil and Devanagari."""

from __future__ import annotations

import unicodedata

from labelfarm.ml.text_metrics import word_errors
from labelfarm.services.transcript_diff import compare, word_diff


def test_runs_of_equal_substituted_deleted_and_inserted_words() -> None:
    runs = word_diff("the cat sat on the mat", "the bat sat on mat today")
    assert runs == [
        ("equal", ["the"], ["the"]),
        ("replace", ["cat"], ["bat"]),
        ("equal", ["sat", "on"], ["sat", "on"]),
        ("delete", ["the"], []),
        ("equal", ["mat"], ["mat"]),
        ("insert", [], ["today"]),
    ]


def test_case_and_punctuation_compare_equal_but_show_as_written() -> None:
    runs = word_diff("Hello, world! How are you?", "hello world how are you")
    assert [op for op, _, _ in runs] == ["equal"]
    assert runs[0][1] == ["Hello,", "world!", "How", "are", "you?"]
    assert runs[0][2] == ["hello", "world", "how", "are", "you"]
    # a word that is all punctuation joins the word before it
    assert word_diff("yes — no", "yes no") == [("equal", ["yes —", "no"], ["yes", "no"])]


def test_tamil_vowel_sign_is_a_different_word() -> None:
    # கடல் (sea) against கடால்: one vowel sign more is another word, never split
    runs = word_diff("நான் கடல் பார்த்தேன்", "நான் கடால் பார்த்தேன்")
    assert runs == [
        ("equal", ["நான்"], ["நான்"]),
        ("replace", ["கடல்"], ["கடால்"]),
        ("equal", ["பார்த்தேன்"], ["பார்த்தேன்"]),
    ]


def test_devanagari_nukta_composed_or_not_and_joiners_are_equal() -> None:
    composed = "\u0929"  # ऩ as one code point
    decomposed = "\u0928\u093c"  # न + nukta
    assert unicodedata.normalize("NFC", decomposed) == composed
    a = f"मैं {composed}ई क्षमा"
    b = f"मैं {decomposed}ई क्\u200dषमा"  # a zero-width joiner inside क्ष
    assert [op for op, _, _ in word_diff(a, b)] == ["equal"]
    # a wrong vowel sign is a substitution: किताब against कीताब
    runs = word_diff("यह किताब है", "यह कीताब है")
    assert runs[1] == ("replace", ["किताब"], ["कीताब"])


def test_the_diff_counts_what_the_word_error_rate_counts() -> None:
    a = "one two three four five six seven"
    b = "one too three five six seven eight nine"
    runs = word_diff(a, b)
    counted = word_errors(a, b)
    changed = sum(max(len(x), len(y)) for op, x, y in runs if op != "equal")
    assert changed == counted.errors
    kept = sum(len(x) for op, x, _ in runs if op == "equal")
    assert kept == counted.hits
    shown = compare("ann", a, "bob", b)
    assert shown["words"] == 7 and shown["errors"] == counted.errors
    assert shown["wer"] == round(counted.errors / 7, 6)
    assert shown["runs"][1] == {"op": "replace", "a": "two", "b": "too"}
    assert not shown["truncated"]


def test_empty_sides() -> None:
    assert word_diff("", "") == []
    assert word_diff("", "a b") == [("insert", [], ["a", "b"])]
    assert word_diff("a b", "") == [("delete", ["a", "b"], [])]

"""WER and CER on hand-checked Hindi and Tamil pairs, and on English against jiwer."""

from __future__ import annotations

import random
import time

import jiwer
import pytest
from tests.audio.clips import speech_clips

from labelfarm.ml.text_metrics import (
    Errors,
    align,
    cer,
    char_edits,
    char_errors,
    graphemes,
    normalise_text,
    token_errors,
    wer,
    word_errors,
    words,
)

HINDI = "मुझे किताब चाहिए"  # graphemes: मु झे ␠ कि ता ब ␠ चा हि ए (10)
TAMIL = "நான் வீட்டுக்கு போகிறேன்"  # "I am going home"


def test_a_wrong_vowel_sign_is_one_word_and_one_grapheme_error():
    wrong = "मुझे कीताब चाहिए"  # ि (U+093F) typed as ी (U+0940)
    assert word_errors(HINDI, wrong) == Errors(2, 1, 0, 0)
    assert wer(HINDI, wrong) == pytest.approx(1 / 3)
    assert graphemes(normalise_text(HINDI)) == [
        "मु", "झे", " ", "कि", "ता", "ब", " ", "चा", "हि", "ए",
    ]  # fmt: skip
    assert char_errors(HINDI, wrong) == Errors(9, 1, 0, 0)
    assert cer(HINDI, wrong) == pytest.approx(1 / 10)
    assert char_errors(HINDI, wrong, unit="codepoint").errors == 1
    assert cer(HINDI, wrong, unit="codepoint") == pytest.approx(1 / len(HINDI))

    tamil_wrong = "நான் விட்டுக்கு போகிறேன்"  # ீ (U+0BC0) typed as ி (U+0BBF)
    assert word_errors(TAMIL, tamil_wrong) == Errors(2, 1, 0, 0)
    assert char_errors(TAMIL, tamil_wrong).errors == 1
    # a missing vowel sign is one grapheme substituted (வீ → வ), not one deleted
    assert char_errors(TAMIL, "நான் வட்டுக்கு போகிறேன்") == Errors(len(graphemes(TAMIL)) - 1, 1, 0, 0)


def test_a_nukta_letter_composed_or_decomposed_is_one_letter():
    composed = "ऩया"  # U+0929 (NA WITH NUKTA)
    decomposed = "\u0928\u093cया"  # NA + NUKTA
    assert composed != decomposed
    assert normalise_text(composed) == normalise_text(decomposed)
    assert wer(composed, decomposed) == 0.0
    assert cer(composed, decomposed) == 0.0
    assert cer(composed, decomposed, unit="codepoint") == 0.0
    assert graphemes(normalise_text(decomposed)) == ["ऩ", "या"]
    # क़ (U+0958) is excluded from composition: NFC makes both the decomposed pair
    assert wer("\u0958िला", "\u0915\u093cिला") == 0.0
    # a nukta that is missing is an error, not normalised away
    assert wer("ज़रूर", "जरूर") == 1.0


def test_zero_width_joiners_do_not_change_a_word():
    plain = "क्ष"
    assert wer(plain, "क्\u200dष") == 0.0  # ZWJ: half form
    assert wer(plain, "क्\u200cष") == 0.0  # ZWNJ: explicit virama
    assert cer(plain, "क्\u200cष") == 0.0
    assert normalise_text("क्\u200dष") == "क्ष"
    # a zero-width space separates words
    assert words(normalise_text("नमस्ते\u200bदुनिया")) == ["नमस्ते", "दुनिया"]


def test_punctuation_goes_and_combining_marks_stay():
    assert normalise_text("वह घर गया। फिर आया॥") == "वह घर गया फिर आया"
    assert wer("वह घर गया।", "वह घर गया") == 0.0
    assert normalise_text("நான், வீட்டுக்கு!") == "நான் வீட்டுக்கு"
    # Tamil virama (pulli) and the vowel signs survive; words are not split at them
    assert normalise_text(TAMIL) == TAMIL
    assert words(normalise_text(TAMIL)) == ["நான்", "வீட்டுக்கு", "போகிறேன்"]
    assert graphemes("நான்") == ["நா", "ன்"]
    assert wer("நான்", "நான") == 1.0  # dropping the pulli changes the word
    # Devanagari signs: anusvara, chandrabindu, visarga are marks, never punctuation
    assert normalise_text("हूँ, अंत: दुःख") == "हूँ अंत दुःख"
    assert normalise_text("Don't STOP — now!") == "dont stop now"
    assert normalise_text("Don't", case=False) == "Dont"
    assert normalise_text("a, b", punctuation=False) == "a, b"


def test_alignment_and_edge_cases():
    assert align(["a", "b", "c"], ["a", "x", "c", "d"]) == [
        ("a", "a"), ("b", "x"), ("c", "c"), (None, "d"),
    ]  # fmt: skip
    assert align(["a", "b"], ["b"]) == [("a", None), ("b", "b")]
    assert word_errors("", "") == Errors(0, 0, 0, 0)
    assert word_errors("", "").rate == 0.0
    assert wer("", "two words") == 2.0
    assert wer("one", "") == 1.0
    assert char_edits("kitten", "sitting") == 3
    with pytest.raises(ValueError, match="unit"):
        char_errors("a", "b", unit="byte")  # type: ignore[arg-type]


def _edited(rng: random.Random, ref: list[str], rate: float, vocab: list[str]) -> list[str]:
    out = []
    for w in ref:
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(rng.choice(vocab))
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(vocab))
    return out


@pytest.mark.skipif(not speech_clips(), reason="pocketsphinx-testdata is not installed")
def test_english_agrees_with_jiwer():
    rng = random.Random(13)
    refs = [text.lower() for _, text in speech_clips()]
    vocab = sorted({w for t in refs for w in t.split()})
    for ref in refs:
        for rate in (0.0, 0.1, 0.3, 0.8):
            hyp = " ".join(_edited(rng, ref.split(), rate, vocab)) or "the"
            assert wer(ref, hyp) == pytest.approx(jiwer.wer(ref, hyp), abs=1e-9)
            assert cer(ref, hyp, unit="codepoint") == pytest.approx(jiwer.cer(ref, hyp), abs=1e-9)
            ours, theirs = word_errors(ref, hyp), jiwer.process_words(ref, hyp)
            assert ours.errors == theirs.substitutions + theirs.deletions + theirs.insertions
            assert ours.reference == len(ref.split())


def test_a_one_hour_transcript_is_aligned_quickly():
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(3000)]
    ref = [rng.choice(vocab) for _ in range(10_000)]
    hyp = _edited(rng, ref, 0.2, vocab)
    started = time.perf_counter()
    errors = token_errors(ref, hyp)
    pairs = align(ref, hyp)
    assert time.perf_counter() - started < 2.0
    assert errors.reference == 10_000
    assert 0.1 < errors.rate < 0.25
    assert [r for r, _ in pairs if r is not None] == ref
    assert [h for _, h in pairs if h is not None] == hyp
    assert sum(r != h for r, h in pairs) == errors.errors

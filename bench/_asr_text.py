"""Text for the ASR benchmark: the one English normaliser its WER is taken after, and the
noisy copies of reference transcripts its aggregation figures are measured on.

The English normaliser (applied to the reference and the hypothesis alike), in this order:

1. Unicode NFKC, lower case; ``&`` → ``and``; ``%`` → ``percent``;
2. titles: ``mr``/``mr.`` → ``mister``, ``mrs``/``mrs.`` → ``missus``, ``dr``/``dr.`` →
   ``doctor`` (whole words only);
3. numbers written with digits → words, by the small speller below: ``1,200`` → ``one
   thousand two hundred``, ``3.5`` → ``three point five``, ``21st`` → ``twenty first``, and
   four-digit numbers from 1100 to 1999 not ending in 00 read as years (``1811`` →
   ``eighteen eleven``); everything under a trillion;
4. hyphens and dashes → a space (``cold-hearted`` → ``cold hearted``);
5. labelfarm's own comparison form (:func:`labelfarm.ml.text_metrics.normalise_text`):
   punctuation and symbols dropped (apostrophes inside a word dropped: ``don't`` →
   ``dont``), white space collapsed.

The raw WER goes through step 5 alone (case and punctuation), as ``word_errors`` does.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from labelfarm.ml import rover
from labelfarm.ml.text_metrics import normalise_text, word_errors

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety"
ONES = _ONES.split()
TENS = _TENS.split()
SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor"}

_TITLE = re.compile(r"\b(mrs|mr|dr)\b\.?")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?\b")
_DASH = re.compile(r"[-\u2010-\u2015]")


def spell_number(n: int) -> str:
    """``n`` (0 ≤ n < 10**12) in English words: 1203 → ``one thousand two hundred three``."""
    if not 0 <= n < 10**12:
        raise ValueError(f"cannot spell {n}: only 0 to 999,999,999,999")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + (f" {ONES[n % 10]}" if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return f"{ONES[n // 100]} hundred" + (f" {spell_number(rest)}" if rest else "")
    for value, name in SCALES:
        if n >= value:
            rest = n % value
            return f"{spell_number(n // value)} {name}" + (f" {spell_number(rest)}" if rest else "")
    raise AssertionError("unreachable")


def spell_year(n: int) -> str:
    """1811 → ``eighteen eleven``, 1905 → ``nineteen oh five``."""
    high, low = divmod(n, 100)
    return f"{spell_number(high)} " + (f"oh {ONES[low]}" if low < 10 else spell_number(low))


def ordinal(words: str) -> str:
    """``twenty one`` → ``twenty first``."""
    head, _, last = words.rpartition(" ")
    if last in ORDINAL:
        last = ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


def _number_words(match: re.Match[str]) -> str:
    token = match.group(0)
    suffix = token[-2:] if token[-2:] in ("st", "nd", "rd", "th") else ""
    digits = token[: len(token) - len(suffix)].replace(",", "")
    whole, _, fraction = digits.partition(".")
    n = int(whole)
    if n >= 10**12:
        return token
    if 1100 <= n <= 1999 and n % 100 and len(whole) == 4 and not fraction and not suffix:
        return f" {spell_year(n)} "
    out = spell_number(n)
    if fraction:
        out += " point " + " ".join(ONES[int(d)] for d in fraction)
    return f" {ordinal(out) if suffix else out} "


def normalise_english(text: str) -> str:
    """The benchmark's English normaliser (see the module text), for both sides of WER."""
    import unicodedata

    out = unicodedata.normalize("NFKC", text).lower()
    out = out.replace("&", " and ").replace("%", " percent ")
    out = _TITLE.sub(lambda m: TITLES[m.group(1)], out)
    out = _NUMBER.sub(_number_words, out)
    out = _DASH.sub(" ", out)
    return normalise_text(out)


# -- aggregation: noisy copies of a reference ------------------------------------------------


@dataclass(frozen=True)
class NoiseRate:
    """Per reference word: substituted, deleted, or followed by an inserted word."""

    copies: int = 5
    substitution: float = 0.10
    deletion: float = 0.05
    insertion: float = 0.05


_FILLERS = (
    "the a and of to in that it was he she they but not had have with for at on his her "
    "be by as so all were there then very more much might"
)
FILLER_WORDS = _FILLERS.split()  # the vocabulary of substitutions and insertions, with the refs


def noisy_copy(
    words: Sequence[str], vocabulary: Sequence[str], rate: NoiseRate, rng: random.Random
) -> list[str]:
    """``words`` with substitutions, deletions and insertions at ``rate``."""
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < rate.deletion:
            pass
        elif roll < rate.deletion + rate.substitution:
            out.append(rng.choice([w for w in vocabulary if w != word] or ["uh"]))
        else:
            out.append(word)
        if rng.random() < rate.insertion:
            out.append(rng.choice(vocabulary))
    return out


@dataclass
class CombineTally:
    """Word errors of the combined transcript and of the medoid copy, summed over trials."""

    trials: int = 0
    reference_words: int = 0
    combined_errors: int = 0
    medoid_errors: int = 0
    copy_errors: int = 0  # of every copy: the noise actually drawn
    copy_words: int = 0

    @property
    def combined_wer(self) -> float:
        return self.combined_errors / max(1, self.reference_words)

    @property
    def medoid_wer(self) -> float:
        return self.medoid_errors / max(1, self.reference_words)

    @property
    def copy_wer(self) -> float:
        return self.copy_errors / max(1, self.copy_words)


def medoid_index(copies: Sequence[Sequence[str]]) -> int:
    """The copy with the least mean WER to the others (each other copy the reference)."""

    def mean_wer(i: int) -> float:
        hyp = " ".join(copies[i])
        others = [" ".join(c) for j, c in enumerate(copies) if j != i]
        return sum(word_errors(o, hyp, normalise=False).rate for o in others) / max(1, len(others))

    return min(range(len(copies)), key=mean_wer)


def measure_combine(
    references: Sequence[str], trials: int, rate: NoiseRate, seed: int = 13
) -> CombineTally:
    """For each reference (normalised) and trial: ``rate.copies`` noisy copies, combined by
    ``rover.combine`` and by picking the medoid; WER of both against the reference."""
    refs = [normalise_english(r).split() for r in references]
    vocabulary = sorted({w for r in refs for w in r} | set(FILLER_WORDS))
    tally = CombineTally()
    for trial in range(trials):
        for k, ref in enumerate(refs):
            rng = random.Random(seed * 1_000_003 + trial * 1009 + k)
            copies = [noisy_copy(ref, vocabulary, rate, rng) for _ in range(rate.copies)]
            combined, _support = rover.combine(copies)
            medoid = copies[medoid_index(copies)]
            reference = " ".join(ref)
            tally.trials += 1
            tally.reference_words += len(ref)
            tally.combined_errors += word_errors(
                reference, " ".join(combined), normalise=False
            ).errors
            tally.medoid_errors += word_errors(reference, " ".join(medoid), normalise=False).errors
            for c in copies:
                tally.copy_errors += word_errors(reference, " ".join(c), normalise=False).errors
                tally.copy_words += len(ref)
    return tally

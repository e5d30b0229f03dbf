"""Combining the transcripts of several annotators of one audio item (``segments`` values).

1. The medoid annotator (the one whose transcript has the highest weighted mean similarity,
   1 − WER, to all the others) gives the segments: boundaries, speakers, languages, events.
2. Every annotator's words are placed in time: a word with a timing (``words`` of an untouched
   ASR segment) at its middle, any other word spread evenly over its segment. Each word goes
   to the medoid segment of its channel that contains that time, else the nearest one.
3. Each medoid segment's text is the ROVER combination (:func:`labelfarm.ml.rover.combine`,
   words compared in their normalised form) of the words all annotators have in it. A
   segment whose vote leaves no words keeps the medoid's text.

The confidence is the mean ROVER support over the segments, each counted by its number of
words (at least 1). With fewer than three annotators the medoid comes back unchanged, with its
mean similarity as the confidence.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any

from labelfarm.ml.rover import combine
from labelfarm.ml.text_metrics import normalise_text, words

__all__ = ["aggregate_segments", "timed_words"]


def timed_words(segment: dict[str, Any]) -> list[tuple[float, str]]:
    """The words of one segment with the time each is said (its middle, or an even spread
    over the segment when the segment carries no word timings for its text)."""
    tokens = words(segment.get("text") or "")
    if not tokens:
        return []
    timings = segment.get("words") or []
    if len(timings) == len(tokens):
        return [((w["start"] + w["end"]) / 2, t) for w, t in zip(timings, tokens, strict=True)]
    start, end = segment["start"], segment["end"]
    step = (end - start) / len(tokens)
    return [(start + (i + 0.5) * step, t) for i, t in enumerate(tokens)]


class _Bins:
    """The medoid's segments per channel, to find the one a time falls in (or is nearest)."""

    def __init__(self, segments: Sequence[dict[str, Any]]) -> None:
        self.by_channel: dict[int, list[tuple[float, float, int]]] = {}
        for k, seg in enumerate(segments):
            self.by_channel.setdefault(seg.get("channel", 0), []).append(
                (seg["start"], seg["end"], k)
            )
        for ranges in self.by_channel.values():
            ranges.sort()
        self.every = sorted(r for ranges in self.by_channel.values() for r in ranges)

    def find(self, channel: int, t: float) -> int:
        ranges = self.by_channel.get(channel) or self.every
        i = bisect.bisect_right(ranges, (t, float("inf"), 0))
        best, gap = ranges[0][2], float("inf")
        for start, end, k in ranges[max(0, i - 2) : i + 1]:
            d = 0.0 if start <= t <= end else min(abs(t - start), abs(t - end))
            if d < gap:
                best, gap = k, d
        return best


def _medoid(
    values: Sequence[Any], weights: Sequence[float], similarity: Callable[[Any, Any], float]
) -> tuple[int, float]:
    total = sum(weights) or 1.0
    support = [
        sum(weights[j] * similarity(a, b) for j, b in enumerate(values)) / total for a in values
    ]
    best = max(range(len(values)), key=support.__getitem__)
    return best, support[best]


def aggregate_segments(
    values: Sequence[Any],
    weights: Sequence[float] | None,
    similarity: Callable[[Any, Any], float],
) -> tuple[Any, float]:
    """The combined segments value of ``values`` (valid values, one per annotator) and a
    confidence in [0, 1]. See the module text."""
    if not values:
        return None, 0.0
    if len(values) == 1:
        return values[0], 0.5
    w = [float(x) for x in weights] if weights is not None else [1.0] * len(values)
    if sum(w) <= 0:
        w = [1.0] * len(values)
    pivot, support = _medoid(values, w, similarity)
    medoid_segments = values[pivot] or []
    if len(values) < 3 or not medoid_segments:
        return values[pivot], support
    bins = _Bins(medoid_segments)
    said: list[list[list[str]]] = [[[] for _ in values] for _ in medoid_segments]
    for who, value in enumerate(values):
        for k_own, seg in enumerate(value or []):
            for t, word in timed_words(seg):
                k = k_own if who == pivot else bins.find(seg.get("channel", 0), t)
                said[k][who].append(word)
    out: list[dict[str, Any]] = []
    total = weighted = 0.0
    for seg, transcripts in zip(medoid_segments, said, strict=True):
        combined, seg_support = combine(transcripts, w, key=normalise_text)
        text = " ".join(combined)
        if text and text != seg.get("text"):
            seg = {k: v for k, v in seg.items() if k not in ("asr", "words")} | {"text": text}
        out.append(dict(seg))
        count = max(1, len(combined))
        total += count
        weighted += count * seg_support
    return out, (weighted / total if total else support)

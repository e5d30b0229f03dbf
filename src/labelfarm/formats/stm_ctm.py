"""NIST STM (segment times and transcripts) and CTM (word times), read and written.

**STM**: ``file channel speaker start end [<label>] transcript``, one segment a line,
``;;`` comments, rows in any order, columns separated by any run of spaces. The label
column (``<o,f0,male>``, ``<>``) is optional and kept aside. The transcript is kept as
written, alternations ``{ a / b }`` and optional words ``(word)`` included. A segment with
no transcript, or ``IGNORE_TIME_SEGMENT_IN_SCORING``, or the speaker
``inter_segment_gap``, marks a stretch the NIST tools do not score: it is left out (noted),
as is a segment of no duration (start = end).

**CTM**: ``file channel start duration word [confidence]``, one word a line, ``;;``
comments. Of an alternation (``<ALT_BEGIN>`` … ``<ALT>`` … ``<ALT_END>``, times ``*``) the
first alternative is kept (the others are noted). Words are grouped into segments by the
STM segment they fall in (when the same import holds the STM) or else where a pause longer
than :data:`PAUSE_MS` separates them; a word's confidence is its ``p``.

Channels are ``1``, ``2`` … or ``A``, ``B`` … (channel 0, 1 …); a file numbering them from
``0`` is read as numbered from 0. Writing: an STM line per segment (speaker ``unknown``
when it has none), a CTM line per word, from the segment's ``words`` when it has them,
else its text's words spread evenly over its time; channels written ``1``, ``2`` ….
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from typing import Any

from labelfarm.formats.transcripts import (
    Cue,
    Transcript,
    TranscriptError,
    decimal_ms,
    millis,
    seconds,
    sort_cues,
)

PAUSE_MS = 500  # words further apart than this start a new segment (CTM without STM)
EXCLUDED = "IGNORE_TIME_SEGMENT_IN_SCORING"
_LABEL = re.compile(r"^<[^<>\s]*>$")


def _rows(text: str) -> Iterable[tuple[int, list[str]]]:
    for n, line in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith(";;"):
            yield n, stripped.split()


def _channel_map(tokens: Iterable[str], line_of: dict[str, int]) -> dict[str, int]:
    """Channel tokens to channel numbers: ``A`` → 0; ``1`` → 0 unless some channel is ``0``."""
    tokens = set(tokens)
    base = 0 if "0" in tokens else 1
    out = {}
    for t in tokens:
        if t.isdigit() and int(t) - base < 1000:
            out[t] = int(t) - base
        elif len(t) == 1 and t.isalpha():
            out[t] = ord(t.upper()) - ord("A")
        else:
            raise TranscriptError(line_of[t], f"channel {t!r}: a number (1, 2 …) or a letter")
    return out


def parse_stm(text: str) -> tuple[dict[str, Transcript], dict[str, int]]:
    """The segments of an STM file by recording (its ``file`` column), and the notes."""
    raw: list[tuple[int, list[str]]] = []
    first_line: dict[str, int] = {}
    notes: dict[str, int] = {}

    def note(reason: str) -> None:
        notes[reason] = notes.get(reason, 0) + 1

    for n, parts in _rows(text):
        if len(parts) < 5:
            raise TranscriptError(
                n, "an STM line is 'file channel speaker start end [<label>] transcript'"
            )
        raw.append((n, parts))
        first_line.setdefault(parts[1], n)
    channels = _channel_map(first_line, first_line)
    out: dict[str, Transcript] = {}
    for n, parts in raw:
        name, chan, speaker = parts[0], channels[parts[1]], parts[2]
        start, end = decimal_ms(parts[3], n, "start"), decimal_ms(parts[4], n, "end")
        rest = parts[5:]
        label = rest.pop(0) if rest and _LABEL.match(rest[0]) else None
        words = " ".join(rest)
        if end < start:
            raise TranscriptError(n, "the segment ends before it starts")
        if not words or words == EXCLUDED or speaker.lower() == "inter_segment_gap":
            note("STM segment marking a stretch left out of scoring (no transcript): left out")
            continue
        if end == start:
            note("STM segment of no duration (start = end): left out")
            continue
        meta = {"label": label} if label and label != "<>" else {}
        cue = Cue(start, end, words, n, speaker=speaker, channel=chan, meta=meta)
        out.setdefault(name, Transcript()).cues.append(cue)
    for t in out.values():
        t.cues = sort_cues(t.cues)
    return out, notes


def _word_rows(text: str) -> tuple[list[tuple[int, list[str]]], dict[str, int]]:
    """The CTM's word rows, first alternatives only, and the notes."""
    rows: list[tuple[int, list[str]]] = []
    notes: dict[str, int] = {}
    alt: str | None = None  # None outside an alternation; "first" or "other" inside
    alt_line = 0
    for n, parts in _rows(text):
        if len(parts) < 5:
            raise TranscriptError(
                n, "a CTM line is 'file channel start duration word [confidence]'"
            )
        word = parts[4]
        if word == "<ALT_BEGIN>":
            if alt is not None:
                raise TranscriptError(n, "<ALT_BEGIN> inside an alternation")
            alt, alt_line = "first", n
        elif word == "<ALT>":
            if alt is None:
                raise TranscriptError(n, "<ALT> outside an alternation")
            alt = "other"
        elif word == "<ALT_END>":
            if alt is None:
                raise TranscriptError(n, "<ALT_END> without <ALT_BEGIN>")
            alt = None
        elif alt == "other":
            notes["CTM alternation: only its first alternative is kept"] = 1
        else:
            rows.append((n, parts))
    if alt is not None:
        raise TranscriptError(alt_line, "<ALT_BEGIN> without its <ALT_END>")
    return rows, notes


def _word(n: int, parts: list[str]) -> tuple[int, int, dict[str, Any]]:
    start = decimal_ms(parts[2], n, "start")
    end = start + decimal_ms(parts[3], n, "duration")
    word: dict[str, Any] = {"start": seconds(start), "end": seconds(end), "word": parts[4]}
    if len(parts) > 5 and parts[5] not in ("NA", "-"):
        try:
            p = float(parts[5])
        except ValueError:
            p = math.nan
        if not 0 <= p <= 1:
            raise TranscriptError(n, f"confidence {parts[5]!r} is not a number from 0 to 1")
        word["p"] = p
    return start, end, word


def parse_ctm(
    text: str, stm: dict[str, Transcript] | None = None
) -> tuple[dict[str, Transcript], dict[str, int]]:
    """The words of a CTM file as segments by recording, and the notes. ``stm``: the same
    recordings' STM segments, which group the words that fall in them."""
    rows, notes = _word_rows(text)
    first_line: dict[str, int] = {}
    for n, parts in rows:
        first_line.setdefault(parts[1], n)
    channels = _channel_map(first_line, first_line)
    words: dict[tuple[str, int], list[tuple[int, int, int, dict[str, Any]]]] = {}
    for n, parts in rows:
        start, end, word = _word(n, parts)
        words.setdefault((parts[0], channels[parts[1]]), []).append((start, end, n, word))
    out: dict[str, Transcript] = {}
    for (name, chan), found in words.items():
        found.sort(key=lambda w: (w[0], w[1]))
        refs = sort_cues([c for c in (stm or {}).get(name, Transcript()).cues if c.channel == chan])
        out.setdefault(name, Transcript()).cues.extend(_group(found, refs, chan))
    for t in out.values():
        t.cues = sort_cues(t.cues)
    return out, notes


def _group(
    found: list[tuple[int, int, int, dict[str, Any]]], refs: list[Cue], chan: int
) -> list[Cue]:
    """Segments of one recording's channel: a segment per STM segment holding words (its
    times and speaker), the other words split where they pause longer than PAUSE_MS."""
    groups: dict[int, list[tuple[int, int, int, dict[str, Any]]]] = {}
    loose: list[list[tuple[int, int, int, dict[str, Any]]]] = []
    starts = [c.start for c in refs]  # refs are sorted by start
    for w in found:
        mid = (w[0] + w[1]) / 2
        ref: int | None = bisect.bisect_right(starts, mid) - 1
        if ref is not None and (ref < 0 or mid >= refs[ref].end):
            ref = None
        if ref is not None:
            groups.setdefault(ref, []).append(w)
        elif loose and w[0] - max(x[1] for x in loose[-1]) <= PAUSE_MS:
            loose[-1].append(w)
        else:
            loose.append([w])
    cues = []
    for i, ws in groups.items():
        cues.append(_cue(ws, chan, refs[i].start, refs[i].end, refs[i].speaker))
    for ws in loose:
        cues.append(_cue(ws, chan, ws[0][0], max(w[1] for w in ws), None))
    return cues


def _cue(
    ws: list[tuple[int, int, int, dict[str, Any]]],
    chan: int,
    start: int,
    end: int,
    speaker: str | None,
) -> Cue:
    text = " ".join(w[3]["word"] for w in ws)
    end = max(end, start + 1)  # words of no duration still make a segment of a millisecond
    return Cue(start, end, text, ws[0][2], speaker=speaker, channel=chan, words=[w[3] for w in ws])


def _dec(ms: int) -> str:
    """Seconds as a short decimal: 1000 → ``1``, 1250 → ``1.25``."""
    whole, frac = divmod(ms, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".")


def _token(text: Any, default: str) -> str:
    return re.sub(r"\s+", "_", str(text or "").strip()) or default


def _text(seg: dict[str, Any]) -> str:
    text = " ".join(str(seg.get("text") or "").split())
    return text or " ".join(f"[{e}]" for e in seg.get("events") or [])


def write_stm(recordings: Iterable[tuple[str, list[dict[str, Any]]]]) -> Iterable[str]:
    """STM lines (each ending in a newline) for (recording name, segments) pairs."""
    for name, segments in recordings:
        for seg in segments:
            text = _text(seg)
            if not text:
                continue
            yield (
                f"{_token(name, 'recording')} {int(seg.get('channel') or 0) + 1} "
                f"{_token(seg.get('speaker'), 'unknown')} {_dec(millis(seg['start']))} "
                f"{_dec(millis(seg['end']))} {text}\n"
            )


def segment_words(seg: dict[str, Any]) -> list[tuple[int, int, str, float | None]]:
    """A segment's words as (start ms, end ms, word, confidence): its ``words`` when it has
    them, else its text's words spread evenly over its time."""
    given = seg.get("words")
    if isinstance(given, list) and given:
        return [
            (millis(w["start"]), millis(w["end"]), str(w["word"]), w.get("p"))
            for w in given
            if isinstance(w, dict) and str(w.get("word") or "").strip()
        ]
    tokens = _text(seg).split()
    start, end = millis(seg["start"]), millis(seg["end"])
    span, n = end - start, len(tokens)
    return [
        (start + span * i // n, start + span * (i + 1) // n, tok, None)
        for i, tok in enumerate(tokens)
    ]


def write_ctm(recordings: Iterable[tuple[str, list[dict[str, Any]]]]) -> Iterable[str]:
    """CTM lines (each ending in a newline) for (recording name, segments) pairs."""
    for name, segments in recordings:
        for seg in segments:
            chan = int(seg.get("channel") or 0) + 1
            for start, end, word, p in segment_words(seg):
                conf = f" {p:.4g}" if isinstance(p, int | float) else ""
                yield (
                    f"{_token(name, 'recording')} {chan} {_dec(start)} {_dec(end - start)} "
                    f"{_token(word, '-')}{conf}\n"
                )

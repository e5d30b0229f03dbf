"""``segments``: a transcript of an audio item as time ranges with text, speaker, language.

    - name: transcript
      type: segments
      speakers: [A, B]              # empty or absent: any name up to 64 characters
      languages: [ta-IN, ta-IN-madurai, hi-IN, en-IN]   # absent: any BCP-47-like tag
      events: [noise, music, overlap, unintelligible]   # the default
      allow_overlap: false          # segments of one channel may not overlap (default)
      max_segments: 5000
      max_text: 2000                # characters of text per segment

A value is a list of segments, sorted by channel then start on validation::

    {"start": 1.25, "end": 3.5, "text": "வணக்கம்", "speaker": "A", "language": ["ta-IN"],
     "events": [], "channel": 0, "asr": true,
     "words": [{"start": 1.3, "end": 1.7, "word": "வணக்கம்", "p": 0.93}]}

Times are seconds rounded to the millisecond. ``text`` is NFC and may be empty only when an
event says why. ``language`` lists tags, the first the main one (more: code-switched speech).
``asr`` marks a segment whose text the speech recogniser wrote and nobody changed; ``words``
(at most 2000) are its word timings and confidences.

Comparison is by word error rate on the transcript text (:mod:`labelfarm.ml.text_metrics`),
aggregation by ROVER (:mod:`labelfarm.schema.segments_aggregate`).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, ClassVar

from labelfarm.ml.text_metrics import normalise_text, token_errors, words
from labelfarm.schema.base import FieldError, FieldType, register
from labelfarm.schema.segments_aggregate import aggregate_segments

DEFAULT_EVENTS = ("noise", "music", "overlap", "unintelligible")
MAX_WORDS = 2000  # word timings per segment
MAX_SECONDS = 360_000.0  # 100 hours: no audio item is longer
MAX_CHANNELS = 256
MAX_TAGS = 8  # language tags per segment
MAX_SPEAKER = 64
MEDIA_SLACK = 0.01  # seconds a segment may end past the file's end (rounding of durations)
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
SEGMENT_KEYS = frozenset(
    {"start", "end", "text", "speaker", "language", "events", "channel", "asr", "words"}
)
WORD_KEYS = frozenset({"start", "end", "word", "p"})


def _seconds(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FieldError(f"expected a time in seconds, got {v!r}", path)
    if not 0 <= v <= MAX_SECONDS:
        raise FieldError(f"a time is between 0 and {MAX_SECONDS:g} seconds, got {v!r}", path)
    return round(float(v), 3)


def _time_range(seg: dict[str, Any], where: str) -> tuple[float, float]:
    start = _seconds(seg.get("start"), f"{where}.start")
    end = _seconds(seg.get("end"), f"{where}.end")
    if end <= start:
        raise FieldError(f"'end' ({end:.3f}) must be after 'start' ({start:.3f})", f"{where}.end")
    return start, end


def _words(v: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(v, list):
        raise FieldError("'words' is a list of {start, end, word, p}", where)
    if len(v) > MAX_WORDS:
        raise FieldError(f"{len(v)} word timings; at most {MAX_WORDS}", where)
    out = []
    for i, w in enumerate(v):
        at = f"{where}[{i}]"
        if not isinstance(w, dict):
            raise FieldError("a word timing is {start, end, word, p}", at)
        unknown = sorted(set(w) - WORD_KEYS)
        if unknown:
            raise FieldError(f"unknown key; keys are {sorted(WORD_KEYS)}", f"{at}.{unknown[0]}")
        start = _seconds(w.get("start"), f"{at}.start")
        end = _seconds(w.get("end"), f"{at}.end")
        if end < start:
            raise FieldError(f"'end' ({end:.3f}) is before 'start' ({start:.3f})", f"{at}.end")
        word = w.get("word")
        if not isinstance(word, str) or len(word) > 200:
            raise FieldError("'word' is a text of at most 200 characters", f"{at}.word")
        item: dict[str, Any] = {
            "start": start,
            "end": end,
            "word": unicodedata.normalize("NFC", word),
        }
        p = w.get("p")
        if p is not None:
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
                raise FieldError(f"'p' is a probability in [0, 1], got {p!r}", f"{at}.p")
            item["p"] = round(float(p), 4)
        out.append(item)
    return out


def transcript_text(value: Any) -> str:
    """The text of a segments value: segments in time order joined by spaces, event-only
    segments left out."""
    segments = sorted(
        value or [], key=lambda s: (s.get("start", 0), s.get("channel", 0), s.get("end", 0))
    )
    return " ".join(t for s in segments if (t := " ".join(str(s.get("text") or "").split())))


def _fmt(seconds: float) -> str:
    return f"{seconds:.3f}"


@register
class Segments(FieldType):
    type_name = "segments"
    spec_keys: ClassVar[frozenset[str]] = frozenset(
        {"speakers", "languages", "events", "allow_overlap", "max_segments", "max_text"}
    )

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.speakers = self._names(spec, "speakers", [], MAX_SPEAKER)
        self.languages = self._names(spec, "languages", [], 64)
        for tag in self.languages:
            if not LANGUAGE_TAG.match(tag):
                raise self.spec_error(f"'languages': {tag!r} is not a tag like ta-IN or hi-IN")
        self.events = self._names(spec, "events", list(DEFAULT_EVENTS), 64)
        self.allow_overlap = spec.get("allow_overlap", False)
        if not isinstance(self.allow_overlap, bool):
            raise self.spec_error("'allow_overlap' is true or false")
        self.max_segments = self._bound(spec, "max_segments", 5000, 100_000)
        self.max_text = self._bound(spec, "max_text", 2000, 100_000)

    def _names(self, spec: dict[str, Any], key: str, default: list[str], longest: int) -> list[str]:
        names = spec.get(key)
        if names is None:
            return list(default)
        if not isinstance(names, list) or not all(
            isinstance(n, str) and 0 < len(n) <= longest for n in names
        ):
            raise self.spec_error(f"'{key}' is a list of names of 1 to {longest} characters")
        if len(set(names)) != len(names):
            raise self.spec_error(f"'{key}' lists a name twice")
        if len(names) > 1000:
            raise self.spec_error(f"'{key}' lists {len(names)} names; at most 1000")
        return list(names)

    def _bound(self, spec: dict[str, Any], key: str, default: int, most: int) -> int:
        v = spec.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
            raise self.spec_error(f"'{key}' is a whole number from 1 to {most}")
        return v

    # -- validation ---------------------------------------------------------------------
    def validate(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise FieldError(f"expected a list of segments, got {type(value).__name__}")
        if len(value) > self.max_segments:
            raise FieldError(f"{len(value)} segments; at most {self.max_segments}")
        if self.required and not value:
            raise FieldError("no segments; mark silence or music with an event segment")
        checked = [(self._segment(seg, f"[{i}]"), i) for i, seg in enumerate(value)]
        checked.sort(key=lambda pair: (pair[0]["channel"], pair[0]["start"], pair[0]["end"]))
        if not self.allow_overlap:
            for (a, ia), (b, ib) in itertools.pairwise(checked):
                if a["channel"] == b["channel"] and b["start"] < a["end"]:
                    raise FieldError(
                        f"overlaps segment [{ia}] ({_fmt(a['start'])}–{_fmt(a['end'])}) on "
                        f"channel {a['channel']}; this field does not allow overlap",
                        f"[{ib}].start",
                    )
        return [seg for seg, _ in checked]

    def _segment(self, seg: Any, where: str) -> dict[str, Any]:
        if not isinstance(seg, dict):
            raise FieldError("a segment is {start, end, text, speaker, language, events}", where)
        unknown = sorted(set(seg) - SEGMENT_KEYS)
        if unknown:
            raise FieldError(
                f"unknown key; keys are {sorted(SEGMENT_KEYS)}", f"{where}.{unknown[0]}"
            )
        start, end = _time_range(seg, where)
        events = self._events(seg.get("events"), f"{where}.events")
        text = seg.get("text", "")
        if not isinstance(text, str):
            raise FieldError(f"'text' is a text, got {type(text).__name__}", f"{where}.text")
        text = unicodedata.normalize("NFC", text)
        if len(text) > self.max_text:
            raise FieldError(
                f"text is {len(text)} characters; at most {self.max_text}", f"{where}.text"
            )
        if not text.strip() and not events:
            raise FieldError("text is empty; give the text or an event saying why", f"{where}.text")
        channel = seg.get("channel", 0)
        if isinstance(channel, bool) or not isinstance(channel, int):
            raise FieldError(f"'channel' is a whole number, got {channel!r}", f"{where}.channel")
        if not 0 <= channel < MAX_CHANNELS:
            raise FieldError(f"'channel' is from 0 to {MAX_CHANNELS - 1}", f"{where}.channel")
        out: dict[str, Any] = {
            "start": start,
            "end": end,
            "text": text,
            "speaker": self._speaker(seg.get("speaker"), f"{where}.speaker"),
            "language": self._language(seg.get("language"), f"{where}.language"),
            "events": events,
            "channel": channel,
        }
        asr = seg.get("asr")
        if asr is not None and not isinstance(asr, bool):
            raise FieldError("'asr' is true or false", f"{where}.asr")
        if asr:
            out["asr"] = True
        if seg.get("words") is not None:
            out["words"] = _words(seg["words"], f"{where}.words")
        return out

    def _speaker(self, v: Any, where: str) -> str | None:
        if v is None or v == "":
            return None
        if not isinstance(v, str) or len(v) > MAX_SPEAKER:
            raise FieldError(f"a speaker is a name of at most {MAX_SPEAKER} characters", where)
        if self.speakers and v not in self.speakers:
            raise FieldError(f"unknown speaker {v!r}; speakers are {self.speakers}", where)
        return unicodedata.normalize("NFC", v)

    def _language(self, v: Any, where: str) -> list[str]:
        tags = [v] if isinstance(v, str) else v
        if tags is None:
            return []
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            raise FieldError(f"'language' is a list of at most {MAX_TAGS} tags", where)
        for i, tag in enumerate(tags):
            if not isinstance(tag, str) or not LANGUAGE_TAG.match(tag):
                raise FieldError(f"{tag!r} is not a language tag like ta-IN", f"{where}[{i}]")
            if self.languages and tag not in self.languages:
                raise FieldError(
                    f"unknown language {tag!r}; languages are {self.languages}", f"{where}[{i}]"
                )
        return list(dict.fromkeys(tags))

    def _events(self, v: Any, where: str) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list):
            raise FieldError(f"'events' is a list among {self.events}", where)
        for i, event in enumerate(v):
            if event not in self.events:
                raise FieldError(
                    f"unknown event {event!r}; events are {self.events}", f"{where}[{i}]"
                )
        return [e for e in self.events if e in v]

    def check_media(self, value: Any, duration: float, channels: int) -> None:
        """Refuse a (valid) value that does not fit inside the audio file: a segment ending
        after ``duration`` (+10 ms) or on a channel the file does not have. Word timings are
        the recogniser's notes and are not checked."""
        limit = duration + MEDIA_SLACK
        for i, seg in enumerate(value or []):
            if seg["end"] > limit:
                raise FieldError(
                    f"ends at {_fmt(seg['end'])} s, after the end of the audio ({duration:.3f} s)",
                    f"[{i}].end",
                )
            if seg.get("channel", 0) >= channels:
                raise FieldError(
                    f"channel {seg.get('channel', 0)}: the audio has {channels} channel(s) "
                    f"(0 to {channels - 1})",
                    f"[{i}].channel",
                )

    # -- comparing and combining -------------------------------------------------------
    def similarity(self, a: Any, b: Any) -> float:
        """1 − word error rate of the two transcript texts (symmetric: errors over the longer
        of the two), in [0, 1]."""
        wa = words(normalise_text(transcript_text(a)))
        wb = words(normalise_text(transcript_text(b)))
        longest = max(len(wa), len(wb))
        if not longest:
            return 1.0
        return 1.0 - token_errors(wa, wb).errors / longest

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """Segment boundaries of the medoid annotator, text of each by ROVER over the words
        every annotator said in its time range (see :mod:`labelfarm.schema.segments_aggregate`)."""
        return aggregate_segments(values, weights, self.similarity)

    def score(self, value: Any, gold: Any) -> float:
        """1 − word error rate (capped at 1) of the value's text against the gold text."""
        errors = token_errors(
            words(normalise_text(transcript_text(gold))),
            words(normalise_text(transcript_text(value))),
        )
        return 1.0 - min(1.0, errors.rate)

    def to_cell(self, value: Any) -> str:
        """One line per segment: ``[0.000–2.500] A (ta-IN): text [noise]``."""
        lines = []
        for seg in value or []:
            head = f"[{_fmt(seg['start'])}–{_fmt(seg['end'])}]"
            if seg.get("channel"):
                head += f" ch{seg['channel']}"
            if seg.get("speaker"):
                head += f" {seg['speaker']}"
            if seg.get("language"):
                head += f" ({', '.join(seg['language'])})"
            body = [seg.get("text") or "", *(f"[{e}]" for e in seg.get("events") or [])]
            lines.append(f"{head}: {' '.join(b for b in body if b)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "speakers": self.speakers,
            "languages": self.languages,
            "events": self.events,
            "allow_overlap": self.allow_overlap,
            "max_segments": self.max_segments,
            "max_text": self.max_text,
            "max_words": MAX_WORDS,
        }

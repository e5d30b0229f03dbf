"""SubRip (SRT), read and written.

Read leniently, as ffmpeg and pysubs2 read it: a cue is an optional number line, a timing
line ``hh:mm:ss,mmm --> hh:mm:ss,mmm`` and its text up to the next cue. Parts of a time may
have one digit (``00:00:0,000``), a ``.`` may stand for the ``,``, and the fraction is read
as a decimal fraction of a second (``1,5`` is 1.5 s); anything after the end time (the old
``X1:`` box coordinates) is passed over. ``<font …>``, ``<i>``, ``<b>``, ``<u>``, ``<s>``
and ASS override blocks like ``{\\an8}`` are stripped; a ``<`` that opens no such tag is
text (``2 < 3``). Blank lines between cues may be missing or repeated, and the last line
may lack its line ending. A line that is no timing line where one must be (after a cue
number, or with ``-->`` before the first cue), a cue that ends before it starts, or text
before the first cue is an error at its line; elsewhere such a line is text. Cues may overlap;
they are sorted by time; a cue with no text is passed over (noted).

Written: cues numbered from 1, times ``hh:mm:ss,mmm``, text as it is (SRT has no speaker:
a segment's speaker is not written).
"""

from __future__ import annotations

import re
from typing import Any

from labelfarm.formats.subtitles_vtt import tidy
from labelfarm.formats.transcripts import Cue, Transcript, TranscriptError, clock, millis

_TIME = r"(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{1,9})"
TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?$")
_TAG = re.compile(r"</?(?:i|b|u|s|font)(?:\s[^<>]*)?>", re.I)
_OVERRIDE = re.compile(r"\{\\[^{}]*\}")


def _ms(parts: tuple[str, ...], line: int) -> int:
    h, m, s, frac = parts
    if int(m) > 59 or int(s) > 59:
        raise TranscriptError(line, "minutes and seconds run from 0 to 59")
    ms = (
        round(int(frac) * 10 ** (3 - len(frac)))
        if len(frac) <= 3
        else round(int(frac) / 10 ** (len(frac) - 3))
    )
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + ms


def _timing(text: str, line: int) -> tuple[int, int] | None:
    """(start, end) of a timing line; None for any other line."""
    m = TIMING.match(text)
    if m is None:
        return None
    g = m.groups()
    start, end = _ms(g[0:4], line), _ms(g[4:8], line)
    if end <= start:
        raise TranscriptError(line, "the cue ends before it starts (or when it starts)")
    return start, end


def _not_timing(text: str, line: int) -> TranscriptError:
    return TranscriptError(
        line, f"not a timing line 'hh:mm:ss,mmm --> hh:mm:ss,mmm': {text.strip()[:80]!r}"
    )


def plain_text(text: str) -> str:
    return tidy(_OVERRIDE.sub("", _TAG.sub("", text)))


def parse_srt(text: str) -> Transcript:
    """The cues of an SRT file's text (line endings already ``\\n``)."""
    lines = text.lstrip("\ufeff").split("\n")
    out = Transcript()
    current: tuple[int, int, int] | None = None  # start, end, line
    body: list[str] = []

    def close(*, last: bool = False) -> None:
        if current is None:
            return
        while body and not body[-1].strip():
            body.pop()
        if not last and body and body[-1].strip().isdigit():
            body.pop()  # the next cue's number
        plain = plain_text("\n".join(body))
        if plain:
            out.cues.append(Cue(current[0], current[1], plain, current[2]))
        else:
            out.note("SRT cue with no text: left out")

    after_number = False  # the line before was a cue number (after a blank line)
    blank = True
    for n, line in enumerate(lines, start=1):
        times = _timing(line, n)
        if times is None:
            if after_number or (current is None and "-->" in line):
                raise _not_timing(line, n)
            if current is None and line.strip() and not line.strip().isdigit():
                raise TranscriptError(n, "text before the first cue's timing line")
            after_number = blank and line.strip().isdigit()
            blank = not line.strip() or (blank and after_number)
            if current is not None:
                body.append(line)
            continue
        close()
        current, body, after_number, blank = (times[0], times[1], n), [], False, False
    close(last=True)
    if current is None:
        raise TranscriptError(
            1, "no cue: an SRT cue has a timing line 'hh:mm:ss,mmm --> hh:mm:ss,mmm'"
        )
    out.cues.sort(key=lambda c: (c.start, c.end))
    return out


def write_srt(segments: list[dict[str, Any]]) -> str:
    """An SRT file of ``segments`` (in time order), numbered from 1."""
    out: list[str] = []
    n = 0
    for seg in segments:
        start, end = millis(seg["start"]), millis(seg["end"])
        text = str(seg.get("text") or "").strip() or " ".join(
            f"[{e}]" for e in seg.get("events") or []
        )
        body = "\n".join(ln for ln in text.split("\n") if ln.strip())
        if end <= start or not body:
            continue
        n += 1
        out += [str(n), f"{clock(start, ',')} --> {clock(end, ',')}", body, ""]
    return "\n".join(out)

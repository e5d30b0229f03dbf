"""WebVTT, read and written.

Read as the W3C parser does: the ``WEBVTT`` line and the header after it, ``NOTE``,
``STYLE`` and ``REGION`` blocks are passed over; a cue is an optional id line, a timing
line (``hh:mm:ss.ttt`` or ``mm:ss.ttt``) with optional settings, and its text. A timing
line right after a cue's text, without a blank line, starts the next cue. A cue's
``<v Speaker>`` voice span gives the segment its speaker; other tags (``<c.x>``, ``<i>``,
``<b>``, ``<u>``, ``<lang xx>``, ``<ruby>``, ``<rt>``) are stripped to their text; karaoke
timestamps (``<00:00:01.000>``) are dropped; character references (``&amp;``, ``&lt;``,
``&nbsp;``, ``&lrm;`` …) are decoded. Cue ids and settings are kept aside (``meta``), for
an export to write back while a cue keeps its times. A cue with no text is passed over
(noted). Cues may overlap; they are sorted by time. A timing line no reader can read, or a
cue that ends before it starts, is an error at its line.

Written: ``WEBVTT``, then one cue per segment, ``<v Speaker>`` when the segment has one,
times to the millisecond, ``&``, ``<`` and ``>`` escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from labelfarm.formats.transcripts import Cue, Transcript, TranscriptError, clock, millis

_TIME = r"(?:(\d{1,}):)?(\d{2}):(\d{2})\.(\d{3})"
TIMING = re.compile(rf"^{_TIME}[ \t]+-->[ \t]+{_TIME}(?:[ \t]+(.*))?$")
_BLOCKS = ("NOTE", "STYLE", "REGION")
_TAG = re.compile(r"<([^>]*)>")
_VOICE = re.compile(r"^v(?:\.[^\s>]*)?[ \t]+(.+)$", re.S)
MAX_SPEAKER = 64


def _ms(groups: tuple[str | None, ...], line: int) -> int:
    h, m, s, t = (g or "0" for g in groups)
    if int(m) > 59 or int(s) > 59:
        raise TranscriptError(line, "minutes and seconds run from 00 to 59")
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(t)


def timing(text: str, line: int) -> tuple[int, int, str]:
    """(start, end, settings) of a timing line, or a TranscriptError saying why not."""
    m = TIMING.match(text.strip())
    if m is None:
        raise TranscriptError(
            line, f"not a cue timing line 'hh:mm:ss.ttt --> hh:mm:ss.ttt': {text[:80]!r}"
        )
    start, end = _ms(m.groups()[0:4], line), _ms(m.groups()[4:8], line)
    if end <= start:
        raise TranscriptError(line, "the cue ends before it starts (or when it starts)")
    return start, end, (m.group(9) or "").strip()


def cue_text(payload: str) -> tuple[str, str | None, int]:
    """A cue's plain text, its speaker (the first ``<v>`` span's) and how many voices."""
    speakers: list[str] = []
    parts: list[str] = []
    pos = 0
    for m in _TAG.finditer(payload):
        parts.append(html.unescape(payload[pos : m.start()]))
        pos = m.end()
        voice = _VOICE.match(m.group(1))
        if voice:
            name = html.unescape(voice.group(1)).strip()[:MAX_SPEAKER]
            if name and name not in speakers:
                speakers.append(name)
    parts.append(html.unescape(payload[pos:].split("<", 1)[0]))
    return tidy("".join(parts)), (speakers[0] if speakers else None), len(speakers)


def tidy(text: str) -> str:
    """Text as a transcript keeps it: each line without surrounding spaces, no empty lines."""
    return "\n".join(ln.strip() for ln in text.split("\n") if ln.strip())


def _blocks(lines: list[str]) -> Iterable[tuple[int, list[str]]]:
    """(first line number, lines) of each block after the header; a line with ``-->``
    inside a cue's text starts a block of its own."""
    block: list[str] = []
    first = 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            if block:
                yield first, block
            block = []
            continue
        if block and "-->" in line and _has_timing(block) and not _is_comment(block[0]):
            yield first, block
            block = []
        if not block:
            first = n
        block.append(line)
    if block:
        yield first, block


def _has_timing(block: list[str]) -> bool:
    return any("-->" in ln for ln in block[:2])


def _is_comment(line: str) -> bool:
    head = line.split(None, 1)[0] if line.strip() else ""
    return head in _BLOCKS


def parse_vtt(text: str) -> Transcript:
    """The cues of a WebVTT file's text (line endings already ``\\n``)."""
    lines = text.lstrip("\ufeff").split("\n")
    if not re.match(r"^WEBVTT(?:$|[ \t])", lines[0]):
        raise TranscriptError(1, "a WebVTT file starts with the line 'WEBVTT'")
    end_of_header = next(  # a blank line, or a cue's timing line (no blank line before it)
        (i for i, ln in enumerate(lines) if not ln.strip() or (i and "-->" in ln)), len(lines)
    )
    out = Transcript()
    offset = end_of_header
    for first, block in _blocks(lines[offset:]):
        first += offset
        if _is_comment(block[0]) and "-->" not in block[0]:
            continue
        cue_id = None
        if "-->" not in block[0]:
            if len(block) < 2 or "-->" not in block[1]:
                raise TranscriptError(
                    first,
                    "a block that is neither a cue nor a NOTE, STYLE "
                    "or REGION block (a cue needs a timing line)",
                )
            cue_id, block, first = block[0], block[1:], first + 1
        start, end, settings = timing(block[0], first)
        plain, speaker, voices = cue_text("\n".join(block[1:]))
        if voices > 1:
            out.note("WebVTT cue with more than one voice: the first is kept as the speaker")
        if not plain:
            out.note("WebVTT cue with no text: left out")
            continue
        meta: dict[str, Any] = {}
        if cue_id is not None:
            meta["id"] = cue_id
        if settings:
            meta["settings"] = settings
        out.cues.append(Cue(start, end, plain, first, speaker=speaker, meta=meta))
    out.cues.sort(key=lambda c: (c.start, c.end))
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_vtt(segments: list[dict[str, Any]], kept: dict[str, Any] | None = None) -> str:
    """A WebVTT file of ``segments`` (in time order). ``kept``: what an import kept aside,
    cue ids and settings by ``"start-end"`` in milliseconds, written back for the cues whose
    times are unchanged."""
    by_time = (kept or {}).get("cues") or {}
    out = ["WEBVTT", ""]
    for seg in segments:
        start, end = millis(seg["start"]), millis(seg["end"])
        if end <= start:
            continue
        text = str(seg.get("text") or "")
        if not text.strip():
            events = seg.get("events") or []
            text = " ".join(f"[{e}]" for e in events)
        memo = by_time.get(f"{start}-{end}") or {}
        if memo.get("id"):
            out.append(str(memo["id"]).replace("-->", "--"))
        settings = f" {memo['settings']}" if memo.get("settings") else ""
        out.append(f"{clock(start)} --> {clock(end)}{settings}")
        body = "\n".join(ln for ln in _escape(text).split("\n") if ln.strip())
        speaker = seg.get("speaker")
        if speaker:
            body = f"<v {_escape(str(speaker))}>{body}"
        out.append(body.replace("-->", "--&gt;") or "&nbsp;")
        out.append("")
    return "\n".join(out)

"""Transcript files beside audio files: how a folder or zip import gives its recordings
their transcripts, and how an uploaded transcript file names recordings.

A ``.vtt`` or ``.srt`` file holds one recording's transcript and goes with the audio file
of the same path and stem (``calls/0001.wav`` ↔ ``calls/0001.vtt``). A ``.stm`` or
``.ctm`` file names its recordings in its ``file`` column, matched to the audio files' stems
(``0001`` ↔ ``calls/0001.wav``); a CTM's words are grouped by the STM segments of the same
import when there are some. Each transcript becomes a prediction of the recording's item
(model ``vtt``, ``srt``, ``stm`` or ``ctm``: a pre-fill), or, when the import's option
``transcripts`` is ``annotations``, an imported annotation by annotator of that name. What
a format says beside the text (WebVTT cue ids and settings, STM labels) is kept in the
item's ``source_meta`` for an export in that format.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from labelfarm.formats.registry import ImportSource, ItemRecord, ReadResult, RowProblem
from labelfarm.formats.stm_ctm import parse_ctm, parse_stm
from labelfarm.formats.subtitles_srt import parse_srt
from labelfarm.formats.subtitles_vtt import parse_vtt
from labelfarm.formats.transcripts import (
    EXTENSIONS,
    Transcript,
    TranscriptError,
    read_text,
    segments_value,
)

MODES = ("predictions", "annotations")


@dataclass
class Found:
    """One recording's transcript in one file."""

    fmt: str
    file: str  # the transcript file, relative to the import's root
    transcript: Transcript
    used: bool = False


@dataclass
class Sidecars:
    """The transcripts of an import's folder, by recording."""

    by_path: dict[str, list[Found]] = field(default_factory=dict)  # "calls/0001" (vtt, srt)
    by_stem: dict[str, list[Found]] = field(default_factory=dict)  # "0001" (stm, ctm)
    problems: list[RowProblem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_path or self.by_stem or self.problems)

    def attach(
        self, rec: ItemRecord, rel: str, source: ImportSource
    ) -> ItemRecord | list[RowProblem]:
        """Give an audio file's item the transcripts that name it."""
        p = PurePosixPath(rel)
        found = self.by_path.get(str(p.with_suffix("")), []) + self.by_stem.get(p.stem, [])
        problems: list[RowProblem] = []
        for f in found:
            f.used = True
            problems += attach_transcript(rec, f.fmt, f.file, f.transcript, source)
        return problems or rec

    def unused(self) -> Iterator[ReadResult]:
        """VTT and SRT files with no audio file of their stem (a located problem each)."""
        for found in self.by_path.values():
            for f in found:
                if not f.used:
                    reason = "no audio file of the same name for this transcript"
                    yield f.file, [RowProblem(f.file, "", reason)]


def transcript_mode(source: ImportSource) -> str:
    mode = source.options.get("transcripts") or "predictions"
    return mode if mode in MODES else "predictions"


def attach_transcript(
    rec: ItemRecord, fmt: str, file: str, transcript: Transcript, source: ImportSource
) -> list[RowProblem]:
    """Add a transcript to an item as a prediction or an annotation; the problems."""
    for reason, n in transcript.notes.items():
        source.note(reason, n)
    value = segments_value(source.schema, transcript.cues, file)
    if isinstance(value, list):
        return value
    if transcript_mode(source) == "annotations":
        rec.annotations.append({"annotator": fmt, "value": value})
    else:
        rec.predictions.append({"value": value, "model": fmt, "score": None})
    kept = {f"{c.start}-{c.end}": c.meta for c in transcript.cues if c.meta}
    if kept:
        rec.source_meta = {**(rec.source_meta or {}), fmt: {"cues": kept}}
    return []


def parse_file(
    path: Path, fmt: str, stm: dict[str, Transcript] | None = None
) -> tuple[dict[str, Transcript], dict[str, int]]:
    """A transcript file's recordings (by name; ``""`` for a subtitle file, which names
    none) and the notes of its STM or CTM reading. Raises TranscriptError."""
    text = read_text(path)
    if fmt == "vtt":
        return {"": parse_vtt(text)}, {}
    if fmt == "srt":
        return {"": parse_srt(text)}, {}
    if fmt == "stm":
        return parse_stm(text)
    return parse_ctm(text, stm)


def load_sidecars(root: Path, files: list[Path], source: ImportSource) -> Sidecars:
    """The transcripts among ``files`` (STM before CTM, so that a CTM's words follow the
    STM's segments)."""
    out = Sidecars()
    stm: dict[str, Transcript] = {}
    order = {"vtt": 0, "srt": 0, "stm": 1, "ctm": 2}
    listed = [
        (EXTENSIONS[p.suffix.lower()], p)
        for p in files
        if p.suffix.lower() in EXTENSIONS and not p.is_symlink()
    ]
    for fmt, path in sorted(listed, key=lambda t: (order[t[0]], t[1])):
        rel = path.relative_to(root).as_posix()
        source.check_cancel()
        try:
            recordings, notes = parse_file(path, fmt, stm)
        except TranscriptError as exc:
            out.problems.append(RowProblem(f"{rel} line {exc.line}", "", exc.reason))
            continue
        except OSError as exc:
            out.problems.append(RowProblem(rel, "", f"cannot read: {exc}"))
            continue
        for reason, n in notes.items():
            source.note(reason, n)
        if fmt == "stm":
            for name, t in recordings.items():
                stm.setdefault(name, Transcript()).cues.extend(t.cues)
        for name, t in recordings.items():
            found = Found(fmt, rel, t)
            if name:
                out.by_stem.setdefault(name, []).append(found)
            else:
                out.by_path.setdefault(str(PurePosixPath(rel).with_suffix("")), []).append(found)
    return out


def match_names(data: dict[str, Any], external_id: str | None) -> set[str]:
    """The names a transcript file may give an item's recording: its media file's stem and
    path without suffix, its external id and that id's stem."""
    names: set[str] = set()
    for v in data.values():
        if isinstance(v, str) and v and len(v) < 2000:
            p = PurePosixPath(v.replace("\\", "/"))
            if p.suffix:
                names |= {p.stem, str(p.with_suffix(""))}
    if external_id:
        p = PurePosixPath(external_id.replace("\\", "/"))
        names |= {external_id, p.stem, str(p.with_suffix(""))}
    return names

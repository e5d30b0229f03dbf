"""The ``transcripts`` import: a folder or zip of audio files with their transcripts beside
them (``.vtt``/``.srt`` of the same stem, ``.stm``/``.ctm`` naming recordings), read as
:mod:`labelfarm.formats.folder` reads a folder (see :mod:`labelfarm.formats.transcript_files`
for how transcripts meet recordings and what they become)."""

from __future__ import annotations

from collections.abc import Iterator

from labelfarm.formats import archive
from labelfarm.formats.folder import read_files
from labelfarm.formats.registry import ImportSource, ReadResult, RowProblem, register_reader


@register_reader("transcripts")
def read_transcripts(source: ImportSource) -> Iterator[ReadResult]:
    """The items of a folder or zip of audio files, each with the transcripts naming it."""
    try:
        root = archive.unpacked(source)
    except archive.ArchiveError as exc:
        yield source.filename, exc.problems
        return
    if not root.is_dir():
        reason = (
            "a transcript file alone holds no audio: import a zip of the audio files with "
            "their transcripts beside them, or attach it to the project's audio items "
            "(POST /api/v1/projects/{id}/transcripts)"
        )
        yield source.filename, [RowProblem(source.filename, "", reason)]
        return
    yield from read_files(root, source)

"""What the server derives from a stored audio file, once, when it is imported.

For each audio file (by the sha of its bytes): its duration, sample rate, channels and
libsndfile format; waveform peaks at four zoom levels (0.01, 0.04, 0.16 and 0.64 s a bucket),
so that a browser draws the waveform without downloading the file; and a listening copy,
Ogg Opus mono at about 24 kbit/s, for a slow link. Peaks and the listening copy are stored
content-addressed in the media store like the file itself; their shas are kept in the
``media_audio`` row (:func:`register_audio`).

Everything is derived in one streaming pass (:mod:`labelfarm.ml.audio`): the file is decoded
a block at a time, each block feeding the peaks and the Opus encoder, so an hour of audio
takes no more memory than a second of it. A file that does not decode to its end raises
:class:`~labelfarm.ml.audio.AudioError` and the import refuses it.

A peaks file is int8 ``(min, max)`` per channel per bucket, channels interleaved: bucket
``b``, channel ``c`` at bytes ``(b * channels + c) * 2``; values are sample × 127, rounded.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import soundfile as sf

from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.jsonutil import dumps, loads
from labelfarm.ml.audio import Peaks, Resampler, blocks, mono, open_audio, peak_bucket_seconds
from labelfarm.services.media import MediaStore

STREAM_MIME = "audio/ogg; codecs=opus"
STREAM_RATES = (8000, 16000, 24000)  # the listening copy's rate: the first not below the file's
# libsndfile maps its compression level to Opus's bitrate (1.0: 6 kbit/s, 0.0: 256 kbit/s a
# channel): 0.932 gives about 24 kbit/s of mono with the Ogg framing
OPUS_LEVEL = 0.932
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Level:
    """One zoom level of a file's waveform peaks: seconds per bucket, the peaks file (its
    sha in the media store) and how many buckets it holds."""

    seconds: float
    sha256: str
    buckets: int


@dataclass(frozen=True)
class AudioFacts:
    """What was derived from one stored audio file."""

    sha256: str
    duration: float  # seconds
    sample_rate: int
    channels: int
    format: str  # libsndfile's major format: WAV, FLAC, OGG, MP3, …
    levels: tuple[Level, ...]  # finest first
    stream_sha256: str | None = None  # the listening copy
    stream_mime: str | None = None

    def public(self) -> dict[str, Any]:
        """The facts a page is given (no shas: an annotator's URLs never name the file)."""
        return {
            "duration": self.duration,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "levels": [{"seconds": lv.seconds, "buckets": lv.buckets} for lv in self.levels],
            "stream": self.stream_mime,
        }


def stream_rate(rate: int) -> int:
    """The listening copy's sample rate for a file at ``rate``: Opus takes 8, 12, 16, 24 or
    48 kHz; speech needs no more than 24."""
    return next((r for r in STREAM_RATES if r >= rate), STREAM_RATES[-1])


def file_sha256(path: str | Path) -> str:
    """The sha of a file's bytes, as the media store names it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def derive_audio(store: MediaStore, sha: str, path: str | Path) -> AudioFacts:
    """Decode the audio file ``path`` (stored, or to be stored, as ``sha``) once, a block at a
    time: its facts, its peaks and its listening copy, both stored in ``store``. Raises
    :class:`~labelfarm.ml.audio.AudioError` when the file does not decode to its end."""
    with tempfile.TemporaryDirectory(prefix="labelfarm-audio-") as scratch:
        stream_path = Path(scratch) / "stream.opus"
        with open_audio(path) as snd:
            rate, channels, fmt = snd.samplerate, snd.channels, snd.format
            out_rate = stream_rate(rate)
            peaks = Peaks(rate, channels)
            resampler = Resampler(rate, out_rate)
            frames = 0
            with sf.SoundFile(
                stream_path,
                "w",
                out_rate,
                1,
                "OPUS",
                format="OGG",
                compression_level=OPUS_LEVEL,
            ) as opus:
                for block in blocks(snd):
                    frames += len(block)
                    peaks.add(block)
                    _write(opus, resampler.feed(mono(block)))
                _write(opus, resampler.flush())
        levels = []
        for k, (seconds, level) in enumerate(
            zip(peak_bucket_seconds(), peaks.levels(), strict=True)
        ):
            level_path = Path(scratch) / f"peaks-{k}"
            level_path.write_bytes(level.tobytes())
            level_sha, _ = store.put_file(level_path)
            levels.append(Level(seconds, level_sha, len(level)))
        stream_sha, _ = store.put_file(stream_path)
    return AudioFacts(
        sha256=sha,
        duration=round(frames / rate, 6),
        sample_rate=rate,
        channels=channels,
        format=fmt,
        levels=tuple(levels),
        stream_sha256=stream_sha,
        stream_mime=STREAM_MIME,
    )


def _write(opus: sf.SoundFile, samples: Any) -> None:
    if len(samples):
        opus.write(samples)


# -- the media_audio rows -------------------------------------------------------------------
class _AudioRow(NamedTuple):
    sha256: str
    duration: float
    sample_rate: int
    channels: int
    format: str
    peaks: str
    stream_sha256: str | None
    stream_mime: str | None


REGISTER = Sql(
    "INSERT INTO media_audio (sha256, duration, sample_rate, channels, format, peaks, "
    "stream_sha256, stream_mime, created_at) VALUES (:s, :d, :r, :c, :f, :p, :ss, :sm, :now) "
    "ON CONFLICT (sha256) DO NOTHING"
)
FACTS = Sql(
    "SELECT sha256, duration, sample_rate, channels, format, peaks, stream_sha256, stream_mime "
    "FROM media_audio WHERE sha256 IN :shas",
    row=_AudioRow,
)


def register_audio(tx: Tx, facts: AudioFacts | Iterable[AudioFacts], now: float) -> None:
    """Record derived facts (idempotent: a file registered already keeps its row). The
    file itself must be registered in ``media`` first."""
    many = [facts] if isinstance(facts, AudioFacts) else list(facts)
    tx.many(
        REGISTER,
        [
            {
                "s": f.sha256,
                "d": f.duration,
                "r": f.sample_rate,
                "c": f.channels,
                "f": f.format,
                "p": dumps([vars(lv) for lv in f.levels]),
                "ss": f.stream_sha256,
                "sm": f.stream_mime,
                "now": now,
            }
            for f in many
        ],
    )


def audio_facts(tx: Tx, shas: Iterable[str]) -> dict[str, AudioFacts]:
    """The facts of the files among ``shas`` that were derived, by sha."""
    out: dict[str, AudioFacts] = {}
    for chunk in chunks(sorted(set(shas))):
        for row in tx.rows(FACTS, {"shas": list(chunk)}):
            levels = tuple(Level(**lv) for lv in loads(row.peaks))
            out[row.sha256] = AudioFacts(
                row.sha256,
                row.duration,
                row.sample_rate,
                row.channels,
                row.format,
                levels,
                row.stream_sha256,
                row.stream_mime,
            )
    return out


def derived_already(tx: CoreTx, shas: Iterable[str]) -> set[str]:
    """Which of ``shas`` have their facts registered."""
    return set(audio_facts(tx, shas))


@transaction("lookup")
def audio_of(tx: Tx, sha: str) -> AudioFacts | None:
    """The facts of one stored file, or None when none were derived (not audio). One
    statement, by primary key."""
    return audio_facts(tx, [sha]).get(sha)

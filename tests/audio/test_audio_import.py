"""Audio items at import: every format the importer reads, at several rates, channel counts
and sample types, with their facts, peaks and listening copy derived once, in a streaming
pass (memory flat for a long file); damaged files refused with their location."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from clips import FORMATS, tone
from scipy.signal import resample_poly
from sqlalchemy import text

from labelfarm.errors import ImportFailed
from labelfarm.ml.audio import AudioError, decode, decode_mono_16k
from labelfarm.services.audio_media import (
    STREAM_MIME,
    AudioFacts,
    audio_facts,
    derive_audio,
    file_sha256,
)
from labelfarm.services.imports import import_items

SCHEMA = {
    "data": {"audio": "audio"},
    "fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}],
}
# (kind, rate, channels): every format, and rates, channel counts and sample types across them
CASES = [
    ("wav", 8000, 1),
    ("wav", 44100, 2),
    ("wav24", 22050, 3),
    ("wavf", 48000, 4),
    ("flac", 44100, 2),
    ("flac", 8000, 1),
    ("ogg", 22050, 2),
    ("opus", 48000, 2),
    ("opus", 16000, 1),
    ("mp3", 44100, 2),
    ("mp3", 22050, 1),
]


def _import(world: Any, project: Any, folder: Path, names: list[str]) -> Any:
    path = folder / "items.jsonl"
    rows = [json.dumps({"data": {"audio": n}, "media": n, "external_id": n}) for n in names]
    path.write_text("\n".join(rows) + "\n")
    return import_items(
        world.db,
        project,
        path,
        "jsonl",
        media=world.ctx.media,
        now=world.clock(),
        user_id=None,
        base_dir=folder,
    )


def _facts(world: Any, paths: list[Path]) -> dict[Path, AudioFacts]:
    shas = {p: file_sha256(p) for p in paths}
    with world.db.begin("read") as tx:
        found = audio_facts(tx, shas.values())
    return {p: found[s] for p, s in shas.items()}


def _peaks_by_numpy(samples: np.ndarray, rate: int) -> np.ndarray:
    """The finest level computed directly: min and max of each 0.01 s bucket, × 127."""
    index = np.arange(len(samples)) * 100 // rate
    out = np.zeros((index[-1] + 1, samples.shape[1], 2), dtype=np.int8)
    for b in range(index[-1] + 1):
        part = samples[index == b]
        out[b, :, 0] = np.rint(np.clip(part.min(axis=0), -1, 1) * 127)
        out[b, :, 1] = np.rint(np.clip(part.max(axis=0), -1, 1) * 127)
    return out


def _stored(world: Any, sha: str) -> bytes:
    with world.ctx.media.open(sha) as fh:
        return bytes(fh.read())


def test_every_format_rate_and_channel_count_is_derived(world, tmp_path):
    assert {kind for kind, _, _ in CASES} == set(FORMATS)
    project = world.project(world.workspace(), schema=SCHEMA)
    paths = [tone(tmp_path, kind, seconds=1.5, rate=rate, channels=ch) for kind, rate, ch in CASES]
    result = _import(world, project, tmp_path, [p.name for p in paths])
    assert result.n_items == len(CASES)
    facts = _facts(world, paths)
    for (kind, rate, channels), path in zip(CASES, paths, strict=True):
        got = facts[path]
        samples, _ = sf.read(path, dtype="float32", always_2d=True)
        where = f"{kind} {rate} {channels}"
        assert (got.sample_rate, got.channels) == (rate, channels), where
        assert got.format == FORMATS[kind][0], where
        assert got.duration == pytest.approx(len(samples) / rate, abs=1e-6), where
        assert got.duration == pytest.approx(1.5, abs=0.06), where
        # four levels, 0.01 s to 0.64 s a bucket, each a quarter of the finer one
        finest = (len(samples) - 1) * 100 // rate + 1
        assert [lv.seconds for lv in got.levels] == [0.01, 0.04, 0.16, 0.64]
        assert [lv.buckets for lv in got.levels] == [math.ceil(finest / 4**k) for k in range(4)]
        expected = _peaks_by_numpy(samples, rate)
        level0 = np.frombuffer(_stored(world, got.levels[0].sha256), dtype=np.int8)
        assert np.array_equal(level0.reshape(-1, channels, 2), expected), where
        level1 = np.frombuffer(_stored(world, got.levels[1].sha256), dtype=np.int8)
        level1 = level1.reshape(-1, channels, 2)
        assert np.array_equal(level1[0, :, 1], expected[:4, :, 1].max(axis=0)), where
        assert np.array_equal(level1[-1, :, 0], expected[(len(level1) - 1) * 4 :, :, 0].min(0))
        # each channel is a tone of amplitude 0.8 / (c + 1): its typical bucket says so
        loud = [0.8 / (c + 1) * 127 for c in range(channels)]
        assert np.abs(np.median(level0.reshape(-1, channels, 2)[:, :, 1], 0) - loud).max() < 6
        # the listening copy: Ogg Opus, mono, the whole length
        assert got.stream_mime == STREAM_MIME and got.stream_sha256 is not None
        stream_path = world.ctx.media.local_path(got.stream_sha256)
        info = sf.info(stream_path)
        assert (info.format, info.subtype, info.channels) == ("OGG", "OPUS", 1), where
        assert info.samplerate == (8000 if rate <= 8000 else 16000 if rate <= 16000 else 24000)
        assert info.duration == pytest.approx(got.duration, abs=0.03), where


def test_the_listening_copy_is_about_24_kbits(world, tmp_path):
    rng = np.random.default_rng(7)
    rate, seconds = 44100, 20
    t = np.arange(rate * seconds) / rate
    voice = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    data = (voice + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    path = tmp_path / "long.flac"
    sf.write(path, np.stack([data, data[::-1]], axis=1), rate, format="FLAC")
    facts = derive_audio(world.ctx.media, file_sha256(path), path)
    assert facts.stream_sha256 is not None
    size = len(_stored(world, facts.stream_sha256))
    kbits = size * 8 / facts.duration / 1000
    assert 20 <= kbits <= 28, kbits
    # and what it plays is the file's mono mix, resampled
    heard, heard_rate = sf.read(world.ctx.media.local_path(facts.stream_sha256), dtype="float32")
    assert heard_rate == 24000
    assert len(heard) == pytest.approx(seconds * 24000, abs=24000 * 0.03)
    mix = (data + data[::-1]) / 2
    assert np.sqrt(np.mean(heard**2)) == pytest.approx(np.sqrt(np.mean(mix**2)), rel=0.15)


@pytest.mark.parametrize(
    ("kind", "damage", "reason"),
    [
        ("wav", "cut", "cut short: its header gives"),
        ("ogg", "cut", "cut short: its Ogg stream has no last page"),
        ("mp3", "garble", "does not decode past"),
        ("ogg", "garble", "decodes to"),
        # the import's check decodes both ends of a file: these fail there already
        ("flac", "cut", "not an image or audio file"),
        ("mp3", "cut", "could not be decoded"),
    ],
)
def test_audio_that_does_not_decode_to_its_end_is_refused(world, tmp_path, kind, damage, reason):
    project = world.project(world.workspace(), schema=SCHEMA)
    tone(tmp_path, "wav", seconds=1.0, name="good.wav")  # a good file beside it
    bad = tone(tmp_path, kind, seconds=5.0, rate=44100, channels=2, name=f"bad.{kind}")
    data = bytearray(bad.read_bytes())
    if damage == "cut":
        del data[len(data) * 2 // 3 :]
    else:
        mid = len(data) // 2
        data[mid : mid + 2000] = np.random.default_rng(0).bytes(2000)
    bad.write_bytes(bytes(data))
    with pytest.raises(ImportFailed) as failed:
        _import(world, project, tmp_path, ["good.wav", bad.name])
    (problem,) = failed.value.details
    assert (problem["location"], problem["field"]) == (bad.name, "media")
    assert reason in problem["reason"], problem["reason"]
    with world.db.begin("read") as tx:  # nothing of the import is kept, nothing half-derived
        assert tx.execute(text("SELECT COUNT(*) FROM items")).scalar_one() == 0
        assert tx.execute(text("SELECT COUNT(*) FROM media_audio")).scalar_one() == 0


def test_a_file_is_derived_once(world, tmp_path):
    project = world.project(world.workspace(), schema=SCHEMA)
    path = tone(tmp_path, "flac", seconds=1.0, rate=22050, channels=2)
    twin = tmp_path / "twin.flac"
    twin.write_bytes(path.read_bytes())
    _import(world, project, tmp_path, [path.name, twin.name])  # the same bytes twice
    first = _facts(world, [path])[path]
    # a derived file gone from the store shows whether a later import derives again
    Path(world.ctx.media.local_path(first.levels[3].sha256)).unlink()
    world.clock.advance(60)
    again = tmp_path / "again"
    again.mkdir()
    (again / "same.flac").write_bytes(path.read_bytes())
    _import(world, project, again, ["same.flac"])
    assert not world.ctx.media.exists(first.levels[3].sha256)
    with world.db.begin("read") as tx:
        rows = tx.execute(text("SELECT created_at FROM media_audio")).scalars().all()
    assert rows == [world.clock() - 60]


def test_decode_gives_every_frame_and_16k_mono_equals_resampling_at_once(tmp_path):
    path = tone(tmp_path, "flac", seconds=3.3, rate=44100, channels=2)
    samples, rate = decode(path)
    expected, _ = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 44100 and samples.dtype == np.float32
    assert np.array_equal(samples, expected)
    mono = decode_mono_16k(path)
    at_once = resample_poly(expected.mean(axis=1), 160, 441)
    assert mono.dtype == np.float32 and mono.shape == at_once.shape
    assert np.abs(mono - at_once).max() < 1e-5
    with open(path, "rb") as fh:  # a file object works as well
        assert np.array_equal(decode_mono_16k(fh), mono)
    with pytest.raises(AudioError):
        decode(_not_audio(tmp_path))


def _not_audio(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("not audio at all\n" * 50)
    return path


def test_memory_stays_flat_for_a_long_file(world, tmp_path):
    """20 minutes of audio derive in a few MB: decoded a block at a time, never whole."""
    rate, minutes = 8000, 20
    path = tmp_path / "long.wav"
    t = np.arange(rate) / rate
    minute = np.zeros(rate * 60, dtype=np.float32)  # a second of tone, then quiet (quick to
    minute[:rate] = 0.5 * np.sin(2 * np.pi * 300 * t)  # encode: the test is of memory)
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as out:
        for _ in range(minutes):
            out.write(minute)
    whole = rate * 60 * minutes * 4  # the file decoded at once as float32: 38 MB
    tracemalloc.start()
    try:
        facts = derive_audio(world.ctx.media, file_sha256(path), path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts.duration == minutes * 60
    assert facts.levels[0].buckets == minutes * 60 * 100
    assert peak < whole / 8, peak

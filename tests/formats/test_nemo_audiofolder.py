"""NeMo speech manifests in and out, and the audio-folder dataset Hugging Face ``datasets``
loads."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from labelfarm.formats.detect import guess_format

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "audio"))
from clips import tone  # type: ignore[import-not-found]

LINES = [
    {
        "audio_filepath": "audio/a.wav",
        "duration": 2.0,
        "text": "hello world",
        "lang": "en-IN",
        "speaker": "A",
        "snr": 31.5,
    },
    {
        "audio_filepath": "audio/b.wav",
        "offset": 0.0,
        "duration": 1.25,
        "text": "வணக்கம்",
        "speaker": "B",
        "lang": "ta-IN",
    },
    {
        "audio_filepath": "audio/b.wav",
        "offset": 1.5,
        "duration": 1.5,
        "text": "नमस्ते",
        "lang": "hi-IN",
        "pred_text": "namaste",
    },
]


def _dataset(tmp: Path, lines: list[dict[str, Any]]) -> Path:
    root = tmp / "ds"
    (root / "audio").mkdir(parents=True)
    tone(root / "audio", seconds=2.0, name="a.wav")
    tone(root / "audio", seconds=3.0, freq=220.0, name="b.wav")
    manifest = root / "manifest.jsonl"
    manifest.write_text(
        "".join(json.dumps(ln, ensure_ascii=False) + "\n" for ln in lines), encoding="utf-8"
    )
    return manifest


@pytest.fixture
def imported(lab, tmp_path):
    manifest = _dataset(tmp_path, LINES)
    assert guess_format(manifest) == "nemo-manifest"
    project = lab.project(lab.guess("nemo-manifest", manifest))
    lab.import_(project, manifest, "nemo-manifest")
    return project, manifest


def test_a_manifest_round_trips_with_its_audio(lab, tmp_path, imported):
    project, manifest = imported
    values = lab.values(project)
    [a] = values["audio/a.wav"]
    assert a["transcript"] == [
        {
            "start": 0.0,
            "end": 2.0,
            "text": "hello world",
            "speaker": "A",
            "language": ["en-IN"],
            "events": [],
            "channel": 0,
        }
    ]
    [b] = values["audio/b.wav"]
    assert [(s["start"], s["end"], s["text"], s["language"]) for s in b["transcript"]] == [
        (0.0, 1.25, "வணக்கம்", ["ta-IN"]),
        (1.5, 3.0, "नमस्ते", ["hi-IN"]),
    ]

    exported = lab.export(project, "nemo-manifest")
    out = lab.unzip(exported, tmp_path / "out")
    back = [json.loads(ln) for ln in (out / "manifest.jsonl").read_text().splitlines()]
    assert back == [{k: v for k, v in ln.items() if k != "pred_text"} for ln in LINES]
    for name in ("a.wav", "b.wav"):
        assert (out / "audio" / name).read_bytes() == (
            manifest.parent / "audio" / name
        ).read_bytes()

    archive = tmp_path / "speech.zip"  # the export, imported as it is
    archive.write_bytes(exported)
    assert guess_format(archive) == "nemo-manifest"
    again = lab.project(lab.guess("nemo-manifest", archive))
    lab.import_(again, archive, "nemo-manifest")
    assert lab.values(again) == values


def _no_torchcodec(monkeypatch: pytest.MonkeyPatch) -> None:
    """``datasets`` 4 and later import torchcodec's encoder even to store an audio file's
    path, which uses none of it; with ``decode=False`` nothing is decoded, so without
    torchcodec installed an empty stand-in lets the dataset load."""
    if importlib.util.find_spec("torchcodec") is not None:
        return
    encoders = types.ModuleType("torchcodec.encoders")
    encoders.AudioEncoder = None  # type: ignore[attr-defined]
    package = types.ModuleType("torchcodec")
    package.encoders = encoders  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchcodec", package)
    monkeypatch.setitem(sys.modules, "torchcodec.encoders", encoders)


def test_audiofolder_export_loads_in_datasets(lab, tmp_path, imported, monkeypatch):
    datasets = pytest.importorskip("datasets")
    _no_torchcodec(monkeypatch)
    project, _ = imported
    out = lab.unzip(lab.export(project, "audiofolder"), tmp_path / "af")
    ds = datasets.load_dataset(
        "audiofolder", data_dir=str(out / "data"), split="train", cache_dir=str(tmp_path / "c")
    )
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    rows = sorted(ds, key=lambda r: r["external_id"])
    assert [r["transcription"] for r in rows] == ["hello world", "வணக்கம் नमस्ते"]
    assert [r["speaker"] for r in rows] == ["A", "B"]
    assert [r["language"] for r in rows] == ["en-IN", "ta-IN|hi-IN"]
    assert [r["duration"] for r in rows] == [2.0, 3.0]
    assert [Path(r["audio"]["path"]).name for r in rows] == ["a.wav", "b.wav"]
    assert Path(rows[1]["audio"]["path"]).read_bytes() == (out / "data/audio/b.wav").read_bytes()


def test_manifest_problems_are_located(lab, tmp_path):
    lines = [
        {"audio_filepath": "audio/a.wav", "offset": 0, "duration": 1, "text": "one"},
        {"audio_filepath": "audio/b.wav", "duration": 3, "text": "two"},
        {"audio_filepath": "audio/a.wav", "offset": 1, "duration": 1, "text": "three"},
        {"audio_filepath": "audio/c.wav", "duration": 1, "text": "four"},
        {"audio_filepath": "../a.wav", "duration": 1, "text": "five"},
        {"audio_filepath": "audio/b2.wav", "duration": "long", "text": "six"},
        {"audio_filepath": "audio/d.wav", "offset": 0, "duration": 2, "text": "seven"},
        {"audio_filepath": "audio/d.wav", "offset": 1.5, "duration": 1, "text": "eight"},
    ]
    manifest = _dataset(tmp_path, lines)
    project = lab.project(lab.guess("nemo-manifest", manifest))
    problems = {
        (p["location"], p["field"]): p["reason"]
        for p in lab.fails(project, manifest, "nemo-manifest")
    }
    assert "line 1" in problems[("line 3", "audio_filepath")]
    assert "not found" in problems[("line 4", "audio_filepath")]
    assert "outside" in problems[("line 5", "audio_filepath")]
    assert "number of seconds" in problems[("line 6", "duration")]
    assert "overlaps segment [0]" in problems[("line 8", "transcript[1].start")]

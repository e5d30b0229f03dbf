"""Audio files for the tests: tones written in every format the importer reads, and the
real speech clips of Debian's ``pocketsphinx-testdata`` (LibriVox recordings with their
transcripts) when that package is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")

# (extension, libsndfile format, subtype) of each kind of file an import must read
FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "wav24": ("WAV", "PCM_24"),
    "wavf": ("WAV", "FLOAT"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
_SUFFIX = {"wav24": "wav", "wavf": "wav", "opus": "opus"}


def tone(
    folder: Path,
    kind: str = "wav",
    *,
    seconds: float = 2.0,
    rate: int = 16_000,
    channels: int = 1,
    freq: float = 440.0,
    name: str | None = None,
) -> Path:
    """A sine tone (each channel a different pitch and loudness) written as ``kind``."""
    fmt, subtype = FORMATS[kind]
    if subtype == "OPUS" and rate not in (8000, 12000, 16000, 24000, 48000):
        raise ValueError("Opus takes 8, 12, 16, 24 or 48 kHz")
    t = np.arange(int(seconds * rate)) / rate
    cols = [(0.8 / (c + 1)) * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    data = np.stack(cols, axis=1).astype(np.float32)
    path = folder / (name or f"tone-{kind}-{rate}-{channels}.{_SUFFIX.get(kind, kind)}")
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    return path


def speech_clips() -> list[tuple[Path, str]]:
    """The LibriVox clips of pocketsphinx-testdata with their reference transcripts
    (empty when the package is not installed)."""
    listing = SPEECH_DIR / "transcription"
    if not listing.exists():
        return []
    out = []
    for line in listing.read_text().splitlines():
        text, _, rest = line.rpartition("(")
        name = rest.rstrip(")").strip()
        words = [w for w in text.split() if w not in ("<s>", "</s>")]
        wav = SPEECH_DIR / f"{name}.wav"
        if words and wav.exists():
            out.append((wav, " ".join(words)))
    return out

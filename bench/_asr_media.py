"""Audio files for the ASR benchmark, and what the server does with a long one.

* :func:`write_long_file`: the LibriVox utterances concatenated and repeated to a length
  (a 1-hour file), written as 16 kHz 16-bit WAV a block at a time.
* :func:`import_in_child`: that file imported into a project by the import service in a
  child process of its own, which reports the import's seconds and its peak RSS
  (``VmHWM``): the memory of the server's import of a 1-hour file.
* :func:`first_minute_bytes`: what a browser downloads through the real app (in-process,
  httpx) to draw the waveform of the file and play its first minute: the ``/audio`` facts,
  the peak level the page keeps for a task (:func:`page_level`), and the listening copy
  fetched by HTTP ranges until the Ogg pages hold the first minute (their granule positions
  say how far the audio goes).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

RATE = 16_000
STORED_PEAKS_CAP = 64 * 1024  # the page's STORED_PEAKS_CAP (web/static/js/lib/audio_fetch.js)
RANGE_BYTES = 64 * 1024  # bytes per range request for the listening copy
CHILD_TIMEOUT_S = 1800.0
_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def write_long_file(sources: Sequence[Path], seconds: float, path: Path) -> float:
    """``sources`` (decoded to 16 kHz mono) played in turn, over and over, until ``seconds``
    of audio, written to ``path`` as 16-bit WAV; its duration. Memory: one clip at a time."""
    from labelfarm.ml.audio import decode_mono_16k

    clips = [decode_mono_16k(p) for p in sources]
    if not clips or not any(len(c) for c in clips):
        raise ValueError("no audio to repeat")
    wanted = round(seconds * RATE)
    written = 0
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        while written < wanted:
            for clip in clips:
                part = clip[: wanted - written]
                out.write(part)
                written += len(part)
                if written >= wanted:
                    break
    return written / RATE


def write_slice(source: Path, start_s: float, seconds: float, path: Path) -> float:
    """``seconds`` of ``source`` from ``start_s``, as 16 kHz 16-bit WAV; its duration."""
    with sf.SoundFile(source) as snd:
        snd.seek(int(start_s * snd.samplerate))
        data = snd.read(int(seconds * snd.samplerate), dtype="float32")
        rate = snd.samplerate
    sf.write(path, data, rate, subtype="PCM_16")
    return len(data) / rate


# -- the import, in a child process --------------------------------------------------------


@dataclass(frozen=True)
class ImportRun:
    seconds: float
    cpu_s: float  # CPU seconds the importing process spent on the import
    peak_rss_mb: float  # the importing process's peak (VmHWM)
    baseline_rss_mb: float  # its peak just before the import (interpreter + labelfarm)
    children_peak_rss_mb: float  # of any process it started
    item_id: int
    sha256: str


def import_in_child(
    database_url: str, data_dir: Path, secret: str, project_id: int, audio: Path
) -> ImportRun:
    """Import ``audio`` into the project by the import service, in a fresh process."""
    request = {
        "database_url": database_url,
        "data_dir": str(data_dir),
        "secret": secret,
        "project_id": project_id,
        "audio": str(audio),
    }
    code = f"import sys; sys.path.append({_BENCH_DIR!r}); import _asr_media; _asr_media.child()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the import process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return ImportRun(**answer)


def _max_rss_mb(who: int) -> float:
    """Peak RSS in MB: of this process (``RUSAGE_SELF``) or of its waited-for children.

    For this process Linux's ``VmHWM`` is read rather than ``ru_maxrss``: a process started by
    fork and exec keeps in its ``ru_maxrss`` the parent's RSS at the fork (the benchmark's
    own, with the speech model loaded), while ``VmHWM`` belongs to the new program alone."""
    if who == resource.RUSAGE_SELF:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
        except OSError:
            pass
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    """User + system CPU seconds of this process and of its children waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child() -> None:
    """The child's side of :func:`import_in_child`: the request on stdin, JSON on stdout."""
    from labelfarm.db.engine import Database
    from labelfarm.services import audit, items, projects
    from labelfarm.services.imports import import_items
    from labelfarm.services.media import MediaStore
    from labelfarm.settings import Settings

    request = json.loads(sys.stdin.read())
    audio = Path(request["audio"])
    settings = Settings(
        data_dir=Path(request["data_dir"]),
        database_url=request["database_url"],
        secret_key=request["secret"],
        run_worker=False,
    )
    db = Database(settings.resolved_database_url)
    audit.use_key(db, settings.resolved_audit_key)
    media = MediaStore(settings.resolved_media_root, settings.resolved_secret_key)
    project = db.run(projects.load_project, int(request["project_id"]))
    listing = audio.with_suffix(".jsonl")
    line = {"data": {"audio": audio.name}, "media": audio.name, "external_id": audio.name}
    listing.write_text(json.dumps(line) + "\n")
    baseline = _max_rss_mb(resource.RUSAGE_SELF)
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    db.run(
        import_items,
        project,
        listing,
        "jsonl",
        media=media,
        now=time.time(),
        user_id=None,
        base_dir=audio.parent,
    )
    seconds = time.perf_counter() - t0
    cpu_s = _cpu_s() - cpu0
    row = _item_by_external_id(db, items, project.id, audio.name)
    db.dispose()
    answer = {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "peak_rss_mb": _max_rss_mb(resource.RUSAGE_SELF),
        "baseline_rss_mb": baseline,
        "children_peak_rss_mb": _max_rss_mb(resource.RUSAGE_CHILDREN),
        "item_id": int(row["id"]),
        "sha256": str(row["media_sha256"]),
    }
    print(json.dumps(answer))


def _item_by_external_id(db: Any, items: Any, project_id: int, name: str) -> dict[str, Any]:
    after = 0
    while page := db.run(items.items_page, project_id, after, items.MAX_PAGE):
        for row in page:
            if row["external_id"] == name:
                return dict(row)
        after = page[-1]["id"]
    raise RuntimeError(f"the import made no item {name!r}")


# -- what the browser downloads --------------------------------------------------------------


@dataclass
class FirstMinute:
    facts_bytes: int
    peaks_bytes: int
    peaks_level: int
    peaks_seconds: float
    stream_bytes: int  # of the listening copy, up to the page holding 60 s
    stream_total_bytes: int
    stream_requests: int
    duration: float
    channels: int
    levels: list[dict[str, Any]]

    @property
    def total_kb(self) -> float:
        return (self.facts_bytes + self.peaks_bytes + self.stream_bytes) / 1000


def page_level(levels: Sequence[dict[str, Any]], channels: int) -> int:
    """The index of the peak level the annotate page fetches for a task (its prefetch keeps
    it on the device; ``storedLevel`` in ``web/static/js/lib/audio_fetch.js``): the finest
    whole level of at most :data:`STORED_PEAKS_CAP` bytes, else the coarsest."""
    for i, level in enumerate(levels):
        if int(level["buckets"]) * channels * 2 <= STORED_PEAKS_CAP:
            return i
    return len(levels) - 1


class OggReader:
    """Ogg pages read from the front of a stream as its bytes arrive: where each page ends
    and the granule position (samples at the codec's clock) it has reached."""

    def __init__(self) -> None:
        self.buffer = b""
        self.offset = 0  # stream offset of buffer[0]
        self.clock = 0  # samples per second of the granule positions, once the header is read
        self.pre_skip = 0

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        """Add bytes; (page end offset, granule position) of each page completed."""
        self.buffer += data
        pages = []
        while len(self.buffer) >= 27:
            if self.buffer[:4] != b"OggS":
                raise ValueError(f"not an Ogg page at byte {self.offset}")
            n_segments = self.buffer[26]
            header = 27 + n_segments
            if len(self.buffer) < header:
                break
            size = header + sum(self.buffer[27:header])
            if len(self.buffer) < size:
                break
            granule = struct.unpack_from("<q", self.buffer, 6)[0]
            if not self.clock:
                self._codec(self.buffer[header:size])
            self.offset += size
            pages.append((self.offset, granule))
            self.buffer = self.buffer[size:]
        return pages

    def _codec(self, packet: bytes) -> None:
        if packet.startswith(b"OpusHead"):
            self.clock = 48_000  # Opus granules always count 48 kHz samples
            self.pre_skip = struct.unpack_from("<H", packet, 10)[0]
        elif packet.startswith(b"\x01vorbis"):
            self.clock = struct.unpack_from("<I", packet, 12)[0]
        else:
            raise ValueError("the listening copy is neither Ogg Opus nor Ogg Vorbis")

    def seconds(self, granule: int) -> float:
        return (granule - self.pre_skip) / self.clock if self.clock else 0.0


def first_minute_bytes(client: Any, base: str, query: str, *, seconds: float = 60.0) -> FirstMinute:
    """Bytes the browser downloads from ``{base}/audio…?{query}`` (``client``: an httpx
    client on the app) to draw the whole file's waveform and play its first ``seconds``."""
    facts_response = client.get(f"{base}/audio?{query}")
    facts_response.raise_for_status()
    facts = facts_response.json()
    level = page_level(facts["levels"], int(facts["channels"]))
    peaks = client.get(f"{base}/audio/peaks/{level}?{query}")
    peaks.raise_for_status()
    reader, got, requests, total, reached = OggReader(), 0, 0, 0, None
    while reached is None:
        answer = client.get(
            f"{base}/audio/stream?{query}",
            headers={"Range": f"bytes={got}-{got + RANGE_BYTES - 1}"},
        )
        requests += 1
        if answer.status_code == 416 or not answer.content:
            break
        if answer.status_code != 206:
            raise RuntimeError(f"a range request answered {answer.status_code}, not 206")
        total = int(answer.headers["content-range"].rsplit("/", 1)[1])
        got += len(answer.content)
        for end, granule in reader.feed(answer.content):
            if granule >= 0 and reader.seconds(granule) >= seconds:
                reached = end
                break
        if got >= total:
            break
    return FirstMinute(
        facts_bytes=len(facts_response.content),
        peaks_bytes=len(peaks.content),
        peaks_level=level,
        peaks_seconds=float(facts["levels"][level]["seconds"]),
        stream_bytes=reached if reached is not None else got,
        stream_total_bytes=total,
        stream_requests=requests,
        duration=float(facts["duration"]),
        channels=int(facts["channels"]),
        levels=list(facts["levels"]),
    )

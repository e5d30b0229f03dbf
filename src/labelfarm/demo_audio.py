"""The demo's transcription project: real English speech, pre-filled by speech recognition,
and Tamil and Hindi clips to transcribe from scratch.

The English clips are the LibriVox utterances of Debian's ``pocketsphinx-testdata`` (read
speech with reference transcripts); when the speech model is installed (``labelfarm[asr]``)
an ``asr`` job pre-fills them. The Tamil and Hindi clips are spoken by ``espeak-ng`` when it
is installed; they carry their language in the item data. Nothing is downloaded: what is not
installed is left out, and the project is made only when there is a clip to put in it."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from labelfarm.db.engine import Database
from labelfarm.ml import asr
from labelfarm.services import items, job_queue, projects
from labelfarm.services.imports import import_items
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
FIELD = "transcript"
LANGUAGES = ("en-IN", "ta-IN", "hi-IN")
ESPEAK_TIMEOUT_S = 30.0

# what espeak-ng says for the demo, by language tag: (espeak voice, sentences)
SPOKEN: dict[str, tuple[str, tuple[str, ...]]] = {
    "ta-IN": (
        "ta",
        (
            "வணக்கம், இன்று வானிலை நன்றாக இருக்கிறது.",
            "நாளை காலை பத்து மணிக்கு கூட்டம் நடைபெறும்.",
            "இந்த பொருளை திருப்பி அனுப்ப வேண்டும்.",
        ),
    ),
    "hi-IN": (
        "hi",
        (
            "नमस्ते, आज मौसम बहुत अच्छा है।",
            "कल सुबह दस बजे बैठक होगी।",
            "मुझे यह सामान वापस भेजना है।",
        ),
    ),
}

TRANSCRIPTION_PROJECT: dict[str, Any] = {
    "name": "Speech transcription",
    "overlap": 1,
    "lease_seconds": 900,
    "ordering": "fifo",
    "guidelines": "Transcribe every word as spoken, in the script of the language. One segment "
    "per sentence or speaker turn; mark noise and music with an event tag. Where speech "
    "recognition pre-filled a segment, correct its text and borders.",
    "schema": {
        "data": {"audio": "audio", "language": "text"},
        "fields": [
            {
                "name": FIELD,
                "type": "segments",
                "speakers": ["Speaker 1", "Speaker 2"],
                "languages": list(LANGUAGES),
            }
        ],
    },
}

_LINE = re.compile(r"^<s>\s*(?P<text>.*?)\s*</s>\s*\((?P<name>[^()\s]+)\)\s*$")


@dataclass(frozen=True)
class Utterance:
    """A recorded utterance and its reference transcript."""

    name: str
    path: Path
    text: str


def librivox_utterances(folder: Path = LIBRIVOX_DIR) -> list[Utterance]:
    """The LibriVox utterances of ``pocketsphinx-testdata`` with their reference
    transcripts (``<s> text </s> (name)`` lines), in file order; empty when not installed."""
    listing = folder / "transcription"
    if not listing.is_file():
        return []
    found = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if match is None:
            raise ValueError(f"{listing}:{number}: not a '<s> text </s> (name)' line: {line!r}")
        wav = folder / f"{match['name']}.wav"
        if wav.is_file():
            found.append(Utterance(match["name"], wav, match["text"]))
    return found


def espeak_clips(folder: Path) -> list[tuple[str, str]]:
    """Speak the demo's Tamil and Hindi sentences with ``espeak-ng`` into WAV files in
    ``folder``: (file name, language tag) each; empty when espeak-ng is not installed."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return []
    clips = []
    for tag, (voice, sentences) in SPOKEN.items():
        for n, sentence in enumerate(sentences, 1):
            name = f"espeak-{tag}-{n}.wav"
            subprocess.run(
                [espeak, "-v", voice, "-w", str(folder / name), sentence],
                check=True,
                capture_output=True,
                timeout=ESPEAK_TIMEOUT_S,
            )
            clips.append((name, tag))
    return clips


def _clip_lines(folder: Path, utterances: list[Utterance]) -> list[bytes]:
    """JSONL lines for the clips: LibriVox copied into ``folder``, espeak-ng spoken there."""
    lines = []
    for u in utterances:
        shutil.copyfile(u.path, folder / u.path.name)
        data = {"audio": u.path.name, "language": "en-IN"}
        lines.append(orjson.dumps({"data": data, "media": u.path.name, "external_id": u.name}))
    for name, tag in espeak_clips(folder):
        data = {"audio": name, "language": tag}
        lines.append(orjson.dumps({"data": data, "media": name, "external_id": name}))
    return lines


def asr_unavailable(settings: Settings) -> str | None:
    """Why the demo cannot pre-fill by speech recognition here, or None when it can."""
    return asr.available(settings.asr_model_dir)


def build_transcription_project(
    settings: Settings,
    db: Database,
    media: MediaStore,
    workspace_id: int,
    now: float,
    *,
    created_by: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """The demo's transcription project with its clips, and the ``asr`` job (queued by
    ``created_by``) that pre-fills the English ones when the speech model is installed; None
    when no clip is installed. Returns ``{"project", "items", "asr_job"}`` (``items``: item
    ids by external id)."""
    utterances = librivox_utterances()
    with tempfile.TemporaryDirectory(prefix="labelfarm-demo-audio-") as tmp:
        folder = Path(tmp)
        lines = _clip_lines(folder, utterances)
        if not lines:
            log("no speech clips installed (apt-get install pocketsphinx-testdata espeak-ng)")
            return None
        made = db.run(
            projects.create_project,
            workspace_id=workspace_id,
            now=now,
            actor_id=None,
            **TRANSCRIPTION_PROJECT,
        )
        project = db.run(projects.load_project, made["id"])
        path = folder / "clips.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        db.run(
            import_items,
            project,
            path,
            "jsonl",
            media=media,
            now=now,
            user_id=None,
            base_dir=folder,
        )
    found = _item_ids(db, project.id)
    log(
        f"imported {len(utterances)} LibriVox clips and {len(found) - len(utterances)} "
        "Tamil and Hindi clips to transcribe"
    )
    english = [found[u.name] for u in utterances if u.name in found]
    job = _queue_asr(settings, db, made, english, now, created_by, log)
    return {"project": made, "items": found, "asr_job": job}


def _item_ids(db: Database, project_id: int) -> dict[str, int]:
    after, found = 0, {}
    while page := db.run(items.items_page, project_id, after, items.MAX_PAGE):
        found.update({row["external_id"]: row["id"] for row in page})
        after = page[-1]["id"]
    return found


def _queue_asr(
    settings: Settings,
    db: Database,
    project: dict[str, Any],
    item_ids: list[int],
    now: float,
    created_by: int | None,
    log: Callable[[str], None],
) -> int | None:
    """An ``asr`` job pre-filling the English clips, when the speech model is installed."""
    if not item_ids:
        return None
    why_not = asr_unavailable(settings)
    if why_not is not None:
        log(f"no speech-recognition pre-fill: {why_not}")
        return None
    job = int(
        db.run(
            job_queue.enqueue,
            kind="asr",
            params={"items": item_ids, "field": FIELD, "language": "en-IN"},
            now=now,
            project_id=project["id"],
            workspace_id=project["workspace_id"],
            created_by=created_by,
        )
    )
    log(f"queued job {job}: speech recognition pre-fills the {len(item_ids)} English clips")
    return job

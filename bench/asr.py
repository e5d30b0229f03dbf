"""ASR benchmark: speech-recognition pre-fill, audio import and playback, and the combination
of transcripts, on real speech.

The speech is the LibriVox utterances of Debian's ``pocketsphinx-testdata`` (read English
with reference transcripts; not its card or digit recordings), and a long file made by
concatenating them over and over (1 hour; ``--quick``: 5 minutes). Through the system the
feature lives in, on a fresh SQLite site in a temporary folder:

1. the utterances imported into a project with a ``segments`` field (the import service);
   an ``asr`` job (the job system's worker, in this process) transcribes them with the
   configured model (``labelfarm[asr]``: Whisper tiny.en): real-time factor = the job's
   seconds (model loading included) / seconds of audio, on this machine's cores;
2. WER of the pre-fill against the reference transcripts, raw (case and punctuation
   removed: ``text_metrics.word_errors``) and after the one English normaliser written down
   in ``_asr_text.py`` (titles, numbers, hyphens, ``&``), applied to both sides;
3. character edits a transcriber still makes: Levenshtein distance from the pre-fill to the
   reference (both in the reference's convention: lower case, no punctuation), against the
   reference's length (typing it from scratch);
4. the long file imported by the import service in a child process: seconds and peak RSS
   (``VmHWM``); full runs also transcribe a 10-minute slice of it through the job;
5. what the browser downloads through the real app to draw the long file's waveform and
   play its first minute: ``/audio`` facts + the peak level the page keeps for a task (the
   finest whole level of at most 64 KB) + the Opus stream by HTTP ranges up to the Ogg page
   past 60 s;
6. aggregation: noisy copies of each reference (rate in ``_asr_text.NoiseRate``: 5 copies,
   10 % substitutions, 5 % deletions, 5 % insertions per word, fixed seeds) combined by
   ``labelfarm.ml.rover.combine``, against picking the medoid copy.

Run from the repository root with the project installed (``pip install -e '.[bench,asr]'``)::

    python bench/asr.py --quick
    python bench/asr.py                      # full run, saved to bench/results/
"""

from __future__ import annotations

import os
import sys

# ``python bench/asr.py`` puts bench/ first on sys.path, where queue.py would shadow the
# standard library's ``queue``: move bench/ behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
from rich.console import Console  # noqa: E402
from sqlalchemy import select  # noqa: E402

from _asr_media import (  # noqa: E402
    FirstMinute,
    first_minute_bytes,
    import_in_child,
    write_long_file,
    write_slice,
)
from _asr_report import Report  # noqa: E402
from _asr_text import NoiseRate, measure_combine, normalise_english  # noqa: E402
from _common import (  # noqa: E402
    CpuMeter,
    default_results_path,
    machine_info,
    make_parser,
    warn_if_busy,
    write_json,
)
from labelfarm.client import AppTransport  # noqa: E402
from labelfarm.db.engine import Database, migrate  # noqa: E402
from labelfarm.db.tables import predictions  # noqa: E402
from labelfarm.demo_audio import Utterance, librivox_utterances  # noqa: E402
from labelfarm.jobs.worker import Worker  # noqa: E402
from labelfarm.ml import asr  # noqa: E402
from labelfarm.ml.text_metrics import char_edits, normalise_text, word_errors  # noqa: E402
from labelfarm.schema.segments import transcript_text  # noqa: E402
from labelfarm.services import audit, items, job_queue, projects, users, workspaces  # noqa: E402
from labelfarm.services.imports import import_items  # noqa: E402
from labelfarm.services.media import MediaStore  # noqa: E402
from labelfarm.settings import Settings  # noqa: E402
from labelfarm.web.app import create_app  # noqa: E402

BENCH = "asr"
FIELD = "transcript"
SECRET = "bench-asr-secret"
SCHEMA = {
    "data": {"audio": "audio"},
    "fields": [{"name": FIELD, "type": "segments", "languages": ["en-IN"]}],
}
console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    long_s: float  # the long file's length
    slice_s: float  # the slice of it transcribed through the job (0: none)
    combine_trials: int  # noisy sets of copies per reference


FULL = Plan(3600.0, 600.0, 200)
QUICK = Plan(300.0, 0.0, 20)


class Site:
    """A fresh labelfarm site (SQLite in a temporary folder), its manager and a project."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.settings = Settings(
            data_dir=folder / "data",
            database_url=f"sqlite:///{folder / 'labelfarm.db'}",
            secret_key=SECRET,
            run_worker=False,
        )
        self.db = Database(self.settings.resolved_database_url)
        audit.use_key(self.db, self.settings.resolved_audit_key)
        migrate(self.db)
        self.media = MediaStore(
            self.settings.resolved_media_root, self.settings.resolved_secret_key
        )
        now = time.time()
        self.workspace = self.db.run(
            workspaces.create_workspace, slug="bench", name="Bench", now=now
        )
        self.manager = self.db.run(
            users.register,
            username="manager",
            password=None,
            now=now,
            workspace_id=self.workspace["id"],
            role="manager",
        )
        made = self.db.run(
            projects.create_project,
            workspace_id=self.workspace["id"],
            name="speech",
            schema=SCHEMA,
            now=now,
            actor_id=None,
        )
        self.project = self.db.run(projects.load_project, made["id"])

    def import_clips(self, folder: Path, names: list[str]) -> dict[str, int]:
        """Import the audio files ``names`` of ``folder``; item ids by name."""
        listing = self.folder / f"clips-{len(names)}-{time.monotonic_ns()}.jsonl"
        listing.write_bytes(
            b"".join(
                orjson.dumps({"data": {"audio": n}, "media": n, "external_id": n}) + b"\n"
                for n in names
            )
        )
        self.db.run(
            import_items,
            self.project,
            listing,
            "jsonl",
            media=self.media,
            now=time.time(),
            user_id=None,
            base_dir=folder,
        )
        found: dict[str, int] = {}
        after = 0
        while page := self.db.run(items.items_page, self.project.id, after, items.MAX_PAGE):
            found.update({r["external_id"]: r["id"] for r in page if r["external_id"] in names})
            after = page[-1]["id"]
        missing = set(names) - set(found)
        if missing:
            raise RuntimeError(f"the import made no item for {sorted(missing)}")
        return found

    def transcribe(self, item_ids: list[int]) -> tuple[float, float]:
        """An ``asr`` job on the items, run to its end by a worker here: its seconds (as
        its row records them) and the CPU seconds this process spent on it."""
        job_id = self.db.run(
            job_queue.enqueue,
            kind="asr",
            params={"items": item_ids, "field": FIELD, "language": "en-IN"},
            now=time.time(),
            project_id=self.project.id,
            workspace_id=self.workspace["id"],
            created_by=self.manager["id"],
        )
        with CpuMeter() as cpu:
            Worker(self.settings, self.db, self.media, name="bench-asr").run_until_idle()
        job = self.db.run(job_queue.get_job, job_id)
        if job.state != "done" or job.started_at is None or job.finished_at is None:
            raise RuntimeError(f"asr job {job_id} ended {job.state}: {job.error or job.message}")
        return float(job.finished_at - job.started_at), cpu.seconds

    def transcripts(self, item_ids: list[int]) -> dict[int, str]:
        """The text of the ``asr`` predictions of the items."""
        stmt = select(predictions.c.item_id, predictions.c.value).where(
            predictions.c.project_id == self.project.id,
            predictions.c.model == "asr",
            predictions.c.item_id.in_(item_ids),
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return {int(r.item_id): transcript_text(orjson.loads(r.value).get(FIELD)) for r in rows}

    def media_url(self, sha: str) -> tuple[str, str]:
        """The manager's signed URL of a stored file: (path, query)."""
        url = self.media.sign(
            sha, self.manager["id"], time.time() + 3600, workspace=self.workspace["id"]
        )
        path, _, query = url.partition("?")
        return path, query


def measure_utterances(site: Site, utterances: list[Utterance], report: Report) -> None:
    """RTF of the asr job on the utterances; WER and character edits of its transcripts."""
    folder = utterances[0].path.parent
    ids = site.import_clips(folder, [u.path.name for u in utterances])
    audio_s = sum(_duration(u.path) for u in utterances)
    job_s, cpu_s = site.transcribe(list(ids.values()))
    report.rtf(f"asr job, {len(utterances)} utterances", audio_s, job_s, cpu_s, main=True)
    report.rtf_model(audio_s, transcribe_warm(site.settings, utterances))
    texts = site.transcripts(list(ids.values()))
    for u in utterances:
        hyp = texts.get(ids[u.path.name], "")
        raw = word_errors(u.text, hyp)
        norm = word_errors(normalise_english(u.text), normalise_english(hyp), normalise=False)
        edits = char_edits(normalise_text(hyp), normalise_text(u.text))
        report.utterance(u.name, _duration(u.path), u.text, hyp, raw, norm, edits, len(u.text))


def transcribe_warm(settings: Settings, utterances: list[Utterance]) -> float:
    """Seconds the model alone takes on the utterances, loaded already (as the job loaded
    it: the same compute type and threads), the audio decoded beforehand."""
    from labelfarm.ml.audio import decode_mono_16k

    threads = min(os.cpu_count() or 1, 8)
    model = asr.load_model(
        settings.asr_model_dir, compute_type=settings.asr_compute_type, cpu_threads=threads
    )
    clips = [decode_mono_16k(u.path) for u in utterances]
    t0 = time.perf_counter()
    for clip in clips:
        asr.transcribe(clip, model=model, language="en-IN")
    return time.perf_counter() - t0


def measure_long_file(site: Site, utterances: list[Utterance], plan: Plan, report: Report) -> None:
    """The long file: import (child process), first minute in the browser, slice RTF."""
    long_path = site.folder / "long" / f"librivox-{int(plan.long_s)}s.wav"
    long_path.parent.mkdir()
    duration = write_long_file([u.path for u in utterances], plan.long_s, long_path)
    console.log(f"wrote {duration:.0f} s of speech ({long_path.stat().st_size / 1e6:.0f} MB WAV)")
    run = import_in_child(
        site.settings.resolved_database_url,
        site.settings.data_dir,
        SECRET,
        site.project.id,
        long_path,
    )
    report.long_import(duration, long_path.stat().st_size, run)
    console.log(f"imported it in {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB")
    report.first_minute(browser_first_minute(site, run.sha256))
    if plan.slice_s:
        slice_path = site.folder / "long" / f"slice-{int(plan.slice_s)}s.wav"
        seconds = write_slice(long_path, 0.0, plan.slice_s, slice_path)
        ids = site.import_clips(slice_path.parent, [slice_path.name])
        job_s, cpu_s = site.transcribe(list(ids.values()))
        what = f"asr job, {seconds / 60:.0f}-minute slice of the long file"
        report.rtf(what, seconds, job_s, cpu_s)


def browser_first_minute(site: Site, sha: str) -> FirstMinute:
    """What the browser downloads of the stored file ``sha`` to draw it and play its first
    minute, fetched from the real app in this process by the manager's signed URL."""
    app = create_app(site.settings, run_migrations=False)
    transport = AppTransport(app)
    try:
        with httpx.Client(base_url="http://127.0.0.1", transport=transport) as client:
            base, query = site.media_url(sha)
            return first_minute_bytes(client, base, query)
    finally:
        transport.close()
        app.state.ctx.db.dispose()


def _duration(path: Path) -> float:
    import soundfile as sf

    return float(sf.info(path).duration)


def main(argv: list[str] | None = None) -> int:
    args = make_parser(__doc__.split("\n\n")[0] if __doc__ else BENCH).parse_args(argv)
    utterances = librivox_utterances()
    if not utterances:
        console.print(
            "[red]the LibriVox clips are not installed: apt-get install pocketsphinx-testdata"
        )
        return 2
    plan = QUICK if args.quick else FULL
    machine = machine_info()
    warn_if_busy(console)
    folder = Path(tempfile.mkdtemp(prefix="labelfarm-bench-asr-"))
    report = Report(quick=args.quick, plan_long_s=plan.long_s)
    try:
        site = Site(folder)
        why_not = asr.available(site.settings.asr_model_dir)
        if why_not is not None:
            console.print(f"[red]{why_not}")
            return 2
        report.model = site.settings.asr_model_name
        console.log(f"transcribing {len(utterances)} LibriVox utterances with {report.model}")
        measure_utterances(site, utterances, report)
        measure_long_file(site, utterances, plan, report)
        tally = measure_combine([u.text for u in utterances], plan.combine_trials, NoiseRate())
        report.combine(tally, NoiseRate())
        site.db.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.finish()
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, report.metrics, report.rows)
        console.log(f"results written to {path}")
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Formats benchmark: imports of generated COCO, Label Studio and CVAT files, time and memory.

For each size (10,000 and 100,000 images or tasks; 1,000 and 10,000 with ``--quick``) this
writes a COCO instances file (three boxes per image, one with a polygon), a Label Studio
JSON export (each task with an annotation of three boxes and a choice, and a prediction,
laid out as Label Studio's own export is) and a CVAT for images XML file (three boxes with
an attribute and a polygon per image). Then, in a fresh process on a fresh SQLite database,
it imports each file with ``labelfarm``'s reader (and exports the COCO project again as
COCO), timing both and recording the process's peak resident memory (``ru_maxrss``) and its
peak anonymous memory (the heap, sampled from ``/proc``). The heap must stay flat with
size: the readers walk their file a piece at a time (the COCO one spools it to a scratch
SQLite file); the writer streams. Total RSS also counts the database file SQLite maps into
memory (``PRAGMA mmap_size``, 256 MiB), clean pages that grow with the database up to that
cap, and the heap counts SQLite's page cache (64 MiB), which fills as the database grows.
Each size therefore runs twice: as the server is configured, and with a lean SQLite (2 MiB
cache, no map) that shows the memory of the format code alone. The import itself keeps up
to 20,000 records in flight (batches of 5,000 staged on a writer thread, two queued), so
the heap grows until a file holds that many rows, then stays put; with heavy records (a
Label Studio task with its annotation and prediction) that window is most of the heap.

Run from the repository root with the project installed::

    python bench/formats.py --quick
    python bench/formats.py --json bench/results/formats.json
    python bench/formats.py --quick --formats labelstudio,cvat --json /tmp/formats.json
"""

from __future__ import annotations

import os
import sys

# bench/queue.py would shadow the standard library's ``queue`` for a script run from bench/:
# move bench/ behind the standard library (as queue.py does); ``_common`` is still found.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    print_report,
    write_json,
)
from _format_files import FILE_NAMES, GENERATORS, LS_SCHEMA  # noqa: E402

BENCH = "formats"
FORMATS = ("coco", "labelstudio", "cvat")
NAMES = {"coco": "COCO", "labelstudio": "Label Studio", "cvat": "CVAT"}
SCHEMA = {
    "fields": [
        {
            "name": "boxes",
            "type": "rectangle",
            "labels": ["person", "car", "dog"],
            "required": False,
        },
        {
            "name": "polygons",
            "type": "polygon",
            "labels": ["person", "car", "dog"],
            "required": False,
        },
    ]
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonPeak:
    """Peak anonymous (heap) memory of this process, sampled from /proc on a thread.

    Resident memory also counts pages of files mapped into memory: SQLite maps the database
    file (``PRAGMA mmap_size``), so reading a large database raises RSS by clean, shared
    pages the kernel can drop at will. The anonymous part is what the code itself holds."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now_mb() -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now_mb())

    def __enter__(self) -> AnonPeak:
        self.peak = self.now_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now_mb())


LEAN_PRAGMAS = ("PRAGMA cache_size=-2000", "PRAGMA mmap_size=0")


def worker(fmt: str, path: Path, workdir: Path, lean: bool) -> dict[str, Any]:
    """Import (then export, for COCO) in this (fresh) process; print the figures as JSON.

    ``lean`` runs SQLite with a 2 MB page cache and no memory-mapped file instead of the
    server's 64 MB cache and 256 MB map, to show the memory of the format code alone."""
    from labelfarm.db import engine
    from labelfarm.db.engine import Database, migrate
    from labelfarm.services import audit, projects, workspaces
    from labelfarm.services.exports import export_stream
    from labelfarm.services.imports import import_items
    from labelfarm.services.media import MediaStore

    if lean:
        engine.SQLITE_PRAGMAS = (*engine.SQLITE_PRAGMAS, *LEAN_PRAGMAS)
    db = Database(f"sqlite:///{workdir / 'bench.db'}")
    audit.use_key(db, b"bench-audit-key")
    migrate(db)
    media = MediaStore(str(workdir / "media"), b"bench")
    ws = db.run(workspaces.create_workspace, slug="bench", name="Bench", now=time.time())
    pid = db.run(
        projects.create_project,
        workspace_id=ws["id"],
        name=fmt,
        schema=LS_SCHEMA if fmt == "labelstudio" else SCHEMA,
        now=time.time(),
        actor_id=None,
    )["id"]
    project = db.run(projects.load_project, pid)
    base = _rss_mb()
    t0 = time.perf_counter()
    with AnonPeak() as anon_import:
        result = db.run(
            import_items, project, path, fmt, media=media, now=time.time(), user_id=None
        )
    t_import = time.perf_counter() - t0
    rss_import = _rss_mb()
    row: dict[str, Any] = {
        "images": result.n_items,
        "annotations": result.n_annotations,
        "predictions": result.n_predictions,
        "import_s": round(t_import, 3),
        "baseline_rss_mb": round(base, 1),
        "import_peak_rss_mb": round(rss_import, 1),
        "peak_rss_mb": round(rss_import, 1),
        "import_peak_anon_mb": round(anon_import.peak, 1),
        "peak_anon_mb": round(anon_import.peak, 1),
    }
    if fmt != "coco":
        return row
    t0 = time.perf_counter()
    size = 0
    with AnonPeak() as anon_export, open(workdir / "export.json", "wb") as out:
        chunks, _ = db.run(export_stream, project, "coco", now=time.time(), actor_id=None)
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    row.update(
        export_s=round(time.perf_counter() - t0, 3),
        peak_rss_mb=round(_rss_mb(), 1),
        export_peak_anon_mb=round(anon_export.peak, 1),
        peak_anon_mb=round(max(anon_import.peak, anon_export.peak), 1),
        export_mb=round(size / 2**20, 1),
    )
    return row


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _ends(rows: list[dict[str, Any]], fmt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The smallest and the largest run of ``fmt``."""
    mine = [r for r in rows if r["format"] == fmt]
    return mine[0], mine[-1]


def run_size(fmt: str, n: int, tmp: Path) -> dict[str, Any]:
    path = tmp / FILE_NAMES[fmt].format(n=n)
    t0 = time.perf_counter()
    GENERATORS[fmt](path, n)
    gen_s = time.perf_counter() - t0
    results = []
    for mode in ("server", "lean"):
        workdir = tmp / f"run-{fmt}-{n}-{mode}"
        workdir.mkdir()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", fmt, str(path), str(workdir), mode],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"worker failed for {fmt} {n}:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    row, lean = results
    row["lean_peak_anon_mb"] = lean["peak_anon_mb"]
    row.update(
        format=fmt,
        size=_label(n),
        file_mb=round(path.stat().st_size / 2**20, 1),
        generate_s=round(gen_s, 2),
    )
    path.unlink()
    return row


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        fmt, path, workdir, mode = sys.argv[2:]
        print(json.dumps(worker(fmt, Path(path), Path(workdir), mode == "lean")))
        return
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help=f"comma-separated formats to measure (default: {','.join(FORMATS)})",
    )
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"unknown formats {unknown}; valid: {list(FORMATS)}")
    sizes = [1_000, 10_000] if args.quick else [10_000, 100_000]
    rows = []
    with tempfile.TemporaryDirectory(prefix="labelfarm-bench-formats-") as tmp:
        for fmt in formats:
            for n in sizes:
                rows.append(run_size(fmt, n, Path(tmp)))
    metrics: dict[str, float | int] = {}
    growths: dict[str, float] = {}
    for row in rows:
        s, fmt = row["size"], row["format"]
        prefix = "" if fmt == "coco" else f"{fmt}_"  # COCO's names predate the other formats
        metrics[f"{fmt}_import_s.{s}"] = row["import_s"]
        if "export_s" in row:
            metrics[f"{fmt}_export_s.{s}"] = row["export_s"]
        metrics[f"{prefix}peak_rss_mb.{s}"] = row["peak_rss_mb"]
        metrics[f"{prefix}peak_anon_mb.{s}"] = row["peak_anon_mb"]
        metrics[f"{prefix}lean_peak_anon_mb.{s}"] = row["lean_peak_anon_mb"]
    for fmt in formats:
        small, big = _ends(rows, fmt)
        growths[fmt] = big["lean_peak_anon_mb"] / small["lean_peak_anon_mb"]
        prefix = "" if fmt == "coco" else f"{fmt}_"
        metrics[f"{prefix}lean_peak_anon_growth"] = round(growths[fmt], 3)
    columns = [
        "format",
        ("size", "images / tasks"),
        ("file_mb", "file MB"),
        "annotations",
        ("import_s", "import s"),
        ("export_s", "export s"),
        ("import_peak_rss_mb", "peak RSS after import MB"),
        ("peak_rss_mb", "peak RSS MB"),
        ("peak_anon_mb", "peak heap MB"),
        ("lean_peak_anon_mb", "peak heap, lean SQLite MB"),
        ("export_mb", "export MB"),
    ]
    parts = []
    for fmt in formats:
        small, big = _ends(rows, fmt)
        g = growths[fmt]
        export = f", exported in {big['export_s']:.1f} s" if "export_s" in big else ""
        parts.append(
            f"{NAMES[fmt]} {big['size']} ({big['file_mb']:.0f} MB) imported in "
            f"{big['import_s']:.1f} s{export}, peak RSS {big['peak_rss_mb']:.0f} MB, heap with "
            f"a lean SQLite {small['lean_peak_anon_mb']:.0f} MB at {small['size']}, "
            f"{big['lean_peak_anon_mb']:.0f} MB at {big['size']} (×{g:.2f})"
        )
    summary = "formats: " + "; ".join(parts)
    title = "Imports (and the COCO export), SQLite, one process per format, size and mode"
    print_report(title, columns, rows, summary)
    machine = machine_info()
    if args.json:
        write_json(args.json, BENCH, args.quick, machine, metrics, rows)
    elif not args.quick and formats == list(FORMATS):
        write_json(default_results_path(BENCH, machine), BENCH, False, machine, metrics, rows)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

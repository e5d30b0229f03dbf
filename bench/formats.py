"""Formats benchmark: import and export of a generated COCO file, time and peak memory.

For each size (10,000 and 100,000 images; 1,000 and 10,000 with ``--quick``) this writes a
COCO instances file (three boxes per image, one with a polygon), then, in a fresh process
on a fresh SQLite database, imports it with ``labelfarm``'s COCO reader and exports it
again as COCO, timing both and recording the process's peak resident memory (``ru_maxrss``)
and its peak anonymous memory (the heap, sampled from ``/proc``). The heap must stay flat
with size: the reader walks the JSON a piece at a time and spools it to a scratch SQLite
file; the writer streams. Total RSS also counts the database file SQLite maps into memory
(``PRAGMA mmap_size``, 256 MiB), clean pages that grow with the database up to that cap,
and the heap counts SQLite's page cache (64 MiB), which fills as the database grows. Each
size therefore runs twice: as the server is configured, and with a lean SQLite (2 MiB
cache, no map) that shows the memory of the format code alone.

Run from the repository root with the project installed::

    python bench/formats.py --quick
    python bench/formats.py --json bench/results/formats.json
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

BENCH = "formats"
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


def generate(path: Path, n_images: int) -> None:
    """A COCO file of ``n_images`` images with three annotations each, written streaming."""
    with open(path, "w") as out:
        out.write('{"info": {"description": "bench"}, "categories": [')
        out.write(
            ", ".join(
                json.dumps({"id": i + 1, "name": n, "supercategory": ""})
                for i, n in enumerate(["person", "car", "dog"])
            )
        )
        out.write('], "images": [\n')
        for i in range(n_images):
            sep = ",\n" if i else ""
            out.write(
                sep
                + json.dumps(
                    {"id": i + 1, "file_name": f"img/{i:07d}.jpg", "width": 640, "height": 480}
                )
            )
        out.write('\n], "annotations": [\n')
        ann = 0
        for i in range(n_images):
            for k in range(3):
                ann += 1
                x, y = (i * 7 + k * 50) % 500, (i * 3 + k * 40) % 400
                doc: dict[str, Any] = {
                    "id": ann,
                    "image_id": i + 1,
                    "category_id": k + 1,
                    "bbox": [x, y, 60.5, 40.25],
                    "area": 2435.125,
                    "iscrowd": 0,
                }
                if k == 0:
                    doc["segmentation"] = [[x, y, x + 60, y, x + 60, y + 40, x, y + 40]]
                out.write((",\n" if ann > 1 else "") + json.dumps(doc))
        out.write("\n]}\n")


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


def worker(coco: Path, workdir: Path, lean: bool) -> dict[str, Any]:
    """Import then export in this (fresh) process; print the figures as JSON.

    ``lean`` runs SQLite with a 2 MB page cache and no memory-mapped file instead of the
    server's 64 MB cache and 256 MB map, to show the memory of the format code alone."""
    from labelfarm.db import engine
    from labelfarm.db.engine import Database, migrate
    from labelfarm.services import projects, workspaces
    from labelfarm.services.exports import export_stream
    from labelfarm.services.imports import import_items
    from labelfarm.services.media import MediaStore

    if lean:
        engine.SQLITE_PRAGMAS = (*engine.SQLITE_PRAGMAS, *LEAN_PRAGMAS)
    db = Database(f"sqlite:///{workdir / 'bench.db'}")
    migrate(db)
    media = MediaStore(str(workdir / "media"), b"bench")
    with db.write() as conn:
        ws = workspaces.create_workspace(conn, slug="bench", name="Bench", now=time.time())
        pid = projects.create_project(
            conn, workspace_id=ws["id"], name="coco", schema=SCHEMA, now=time.time(), actor_id=None
        )["id"]
    with db.read() as conn:
        project = projects.load_project(conn, pid)
    base = _rss_mb()
    t0 = time.perf_counter()
    with AnonPeak() as anon_import:
        result = import_items(db, project, coco, "coco", media=media, now=time.time(), user_id=None)
    t_import = time.perf_counter() - t0
    rss_import = _rss_mb()
    t0 = time.perf_counter()
    size = 0
    with AnonPeak() as anon_export, open(workdir / "export.json", "wb") as out:
        chunks, _ = export_stream(db, project, "coco", now=time.time(), actor_id=None)
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    t_export = time.perf_counter() - t0
    return {
        "images": result.n_items,
        "annotations": result.n_annotations,
        "import_s": round(t_import, 3),
        "export_s": round(t_export, 3),
        "baseline_rss_mb": round(base, 1),
        "import_peak_rss_mb": round(rss_import, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "import_peak_anon_mb": round(anon_import.peak, 1),
        "export_peak_anon_mb": round(anon_export.peak, 1),
        "peak_anon_mb": round(max(anon_import.peak, anon_export.peak), 1),
        "export_mb": round(size / 2**20, 1),
    }


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def run_size(n: int, tmp: Path) -> dict[str, Any]:
    coco = tmp / f"coco-{n}.json"
    t0 = time.perf_counter()
    generate(coco, n)
    gen_s = time.perf_counter() - t0
    results = []
    for mode in ("server", "lean"):
        workdir = tmp / f"run-{n}-{mode}"
        workdir.mkdir()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", str(coco), str(workdir), mode],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"worker failed for {n} images:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    row, lean = results
    row["lean_peak_anon_mb"] = lean["peak_anon_mb"]
    row.update(
        size=_label(n), file_mb=round(coco.stat().st_size / 2**20, 1), generate_s=round(gen_s, 2)
    )
    coco.unlink()
    return row


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        print(json.dumps(worker(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "lean")))
        return
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [10_000, 100_000]
    rows = []
    with tempfile.TemporaryDirectory(prefix="labelfarm-bench-formats-") as tmp:
        for n in sizes:
            rows.append(run_size(n, Path(tmp)))
    metrics: dict[str, float | int] = {}
    for row in rows:
        s = row["size"]
        metrics[f"coco_import_s.{s}"] = row["import_s"]
        metrics[f"coco_export_s.{s}"] = row["export_s"]
        metrics[f"peak_rss_mb.{s}"] = row["peak_rss_mb"]
        metrics[f"peak_anon_mb.{s}"] = row["peak_anon_mb"]
        metrics[f"lean_peak_anon_mb.{s}"] = row["lean_peak_anon_mb"]
    small, big = rows[0], rows[-1]
    growth = big["lean_peak_anon_mb"] / small["lean_peak_anon_mb"]
    metrics["lean_peak_anon_growth"] = round(growth, 3)
    columns = [
        ("size", "images"),
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
    summary = (
        f"formats: COCO {big['size']} images imported in {big['import_s']:.1f} s and exported "
        f"in {big['export_s']:.1f} s; heap with a lean SQLite {small['lean_peak_anon_mb']:.0f} "
        f"MB at {small['size']} vs {big['lean_peak_anon_mb']:.0f} MB at {big['size']} "
        f"(×{growth:.2f}: {'flat' if growth < 1.15 else 'NOT flat'}); as served (64 MB page "
        f"cache, 256 MB map) heap {small['peak_anon_mb']:.0f} → {big['peak_anon_mb']:.0f} MB, "
        f"RSS {small['peak_rss_mb']:.0f} → {big['peak_rss_mb']:.0f} MB"
    )
    print_report("COCO import / export (SQLite, one process per size)", columns, rows, summary)
    machine = machine_info()
    if args.json:
        write_json(args.json, BENCH, args.quick, machine, metrics, rows)
    elif not args.quick:
        write_json(default_results_path(BENCH, machine), BENCH, False, machine, metrics, rows)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

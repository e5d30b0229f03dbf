"""The shared benchmark convention (see DESIGN.md, "Benchmarks").

Every ``bench/*.py``:

* takes ``--quick`` (the whole run finishes in under a minute on 2 cores) and ``--json PATH``;
* prints a table and, last, a one-line summary;
* writes ``{"bench", "quick", "machine", "metrics", "rows"}`` with ``--json``.

This module holds the pieces: the argument parser, machine facts, the table printer, the JSON
writer, and samplers for a process tree's peak RSS and CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

Row = dict[str, Any]
Metrics = dict[str, float | int]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def make_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the two options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, short runs: under a minute on 2 cores"
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="write the results as JSON")
    return parser


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Facts about the machine a result was measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "hostname": platform.node(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def warn_if_busy(console: Console | None = None, threshold: float = 0.5) -> None:
    """Benchmarks on a busy machine are noise: say so before starting."""
    load_1m = os.getloadavg()[0]
    if load_1m > threshold:
        (console or Console(stderr=True)).print(
            f"[yellow]warning: load average {load_1m:.2f} before starting; "
            "other work on this machine will skew the figures[/yellow]"
        )


def machine_slug(machine: dict[str, Any]) -> str:
    """A short file-name-safe name for a machine, e.g. ``amd-epyc-2c-24g``."""
    cpu = "-".join(str(machine["cpu"]).lower().split()[:3])
    cpu = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in cpu)
    return f"{cpu}-{machine['cores']}c-{round(machine['memory_gb'])}g"


def default_results_path(bench: str, machine: dict[str, Any]) -> Path:
    """``bench/results/<bench>-<date>-<machine>.json``, where full runs are kept."""
    return RESULTS_DIR / f"{bench}-{dt.date.today().isoformat()}-{machine_slug(machine)}.json"


def wide_console() -> Console:
    """A console for results: at least 180 columns, so wide tables stay readable in logs."""
    console = Console()
    return Console(width=max(console.width, 180)) if not console.is_terminal else console


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


Column = str | tuple[str, str]


def print_table(
    title: str, columns: Sequence[Column], rows: Sequence[Row], console: Console | None = None
) -> None:
    """Print ``rows`` as a table. A column is a row key, or ``(key, header)``."""
    console = console or wide_console()
    table = Table(title=title, title_justify="left")
    keys = [c if isinstance(c, str) else c[0] for c in columns]
    for key, column in zip(keys, columns, strict=True):
        header = column if isinstance(column, str) else column[1]
        first = next((row[key] for row in rows if row.get(key) is not None), None)
        text = isinstance(first, str)
        table.add_column(header, justify="left" if text else "right", no_wrap=text)
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key in keys))
    console.print(table)


def print_summary(summary: str, console: Console | None = None) -> None:
    """The one-line summary, printed last."""
    (console or wide_console()).print(summary, highlight=False, soft_wrap=True, markup=False)


def print_report(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Row],
    summary: str,
    console: Console | None = None,
) -> None:
    """A table, then the one-line summary last."""
    print_table(title, columns, rows, console)
    print_summary(summary, console)


def write_json(
    path: Path, bench: str, quick: bool, machine: dict[str, Any], metrics: Metrics, rows: list[Row]
) -> None:
    """Write the one result shape every benchmark shares."""
    for name, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"metric {name!r} is not a number: {value!r}")
    document = {
        "bench": bench,
        "quick": quick,
        "machine": machine,
        "metrics": metrics,
        "rows": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants, now."""
    total = 0
    for proc in _tree(psutil.Process(pid)):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


class PeakRSS:
    """Samples a process tree's resident memory on a thread; keeps the peak.

    ``with PeakRSS(pid) as peak: ...`` then ``peak.peak_mb``. ``take()`` returns the peak
    since the last ``take()`` (or the start) and starts a new window, so one sampler can report
    per phase as well as overall (``overall_mb``).
    """

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self._window = 0
        self._overall = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peak-rss-{pid}", daemon=True)

    def __enter__(self) -> PeakRSS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        try:
            rss = tree_rss(self.pid)
        except psutil.Error:
            return
        with self._lock:
            self._window = max(self._window, rss)
            self._overall = max(self._overall, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def take(self) -> float:
        """Peak RSS in MB since the last ``take()``; starts a new window."""
        self._sample()
        with self._lock:
            peak, self._window = self._window, 0
        return peak / 2**20

    @property
    def peak_mb(self) -> float:
        return self.overall_mb

    @property
    def overall_mb(self) -> float:
        with self._lock:
            return self._overall / 2**20


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, its live descendants and its reaped children."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in _tree(root):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
        if proc.pid == root.pid:
            total += times.children_user + times.children_system
    return total


class CpuMeter:
    """CPU time a process tree spends over a window: ``with CpuMeter(pid) as cpu: ...``.

    Afterwards ``cpu.seconds`` is the CPU time, ``cpu.wall_s`` the elapsed time and
    ``cpu.pct_of_one_core`` their ratio in percent (200 = two cores busy).
    """

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid if pid is not None else os.getpid()
        self.seconds = 0.0
        self.wall_s = 0.0
        self._cpu0 = 0.0
        self._t0 = 0.0

    def __enter__(self) -> CpuMeter:
        self._cpu0 = tree_cpu_seconds(self.pid)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.seconds = tree_cpu_seconds(self.pid) - self._cpu0

    @property
    def pct_of_one_core(self) -> float:
        return 100.0 * self.seconds / self.wall_s if self.wall_s > 0 else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of already sorted values, nearest-rank; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[rank])

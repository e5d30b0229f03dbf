"""Scores benchmark: annotators' next/submit p99 while the score job refreshes every item's score.

For each database (SQLite, PostgreSQL) a real ``labelfarm serve`` starts on 127.0.0.1 with
its own worker turned off and one ``labelfarm worker`` process started here (as
``bench/models.py`` does). Over HTTP:

1. a project ordered by score (``ordering: score``, sampler ``margin``) of N items (1,000,000;
   ``--quick``: 50,000), imported through the API; every item gets a model output (10-class
   Dirichlet probabilities, what a predict job of the promoted version leaves), written
   straight to the database (``_queue_scores.fill_model_outputs``: setup, not measured);
2. a score refresh alone (``POST …/scores/refresh``, the ``score`` job): its time, as the
   job's row records it (read the outputs, score them, write N scores in short batches);
3. C annotators (``bench/queue.py``'s load client) looping next → submit on that project with
   no job, after a warm-up that is not measured: p99 latencies;
4. the same while a refresh runs: the job starts as the measured window opens (the window
   is as long as the refresh took alone), and the p99 is over the requests started while the
   job ran (its row's ``started_at`` to ``finished_at``), as in ``bench/models.py``.

Run from the repository root with the project installed (``pip install -e '.[bench]'``)::

    python bench/scores.py --quick
    python bench/scores.py                     # full run, saved to bench/results/
    python bench/scores.py --backends sqlite --items 200000 --json out.json
"""

from __future__ import annotations

import os
import sys

# ``python bench/scores.py`` puts bench/ first on sys.path, where queue.py would shadow the
# standard library's ``queue``: move bench/ behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import concurrent.futures  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    warn_if_busy,
    wide_console,
    write_json,
)
from _labelfarm import LABELS  # noqa: E402
from _models_server import (  # noqa: E402
    ModelsTarget,
    job_seconds,
    wait_job,
    wait_running,
    while_running,
)
from _queue_load import run_load  # noqa: E402
from _queue_scores import fill_model_outputs  # noqa: E402
from _targets import BenchError  # noqa: E402

BENCH = "scores"
console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    items: int
    annotators: int
    min_load_s: float  # the shortest load window
    timeout_s: float  # per request of the load client
    warmup_s: float  # before each window: annotators start, connections open, not measured
    client: str = "aiohttp"  # httpx when aiohttp is not installed (as bench/queue.py)
    job_timeout_s: float = 3600


FULL = Plan(1_000_000, 50, 10.0, 30.0, 2.0)
QUICK = Plan(50_000, 20, 3.0, 10.0, 1.0)


@dataclass(frozen=True)
class LoadWindow:
    """What ``run_load`` reads of a plan."""

    duration_s: float
    timeout_s: float
    warmup_s: float
    keep_samples: bool = False


class ScoresTarget(ModelsTarget):
    """``labelfarm serve`` without its own worker, whose projects order their queue by score."""

    def create_project(self, name: str) -> int:
        project_id = super().create_project(name)
        self.api.call("PATCH", f"/api/v1/projects/{project_id}", json={"ordering": "score"})
        return project_id


def parse_args(argv: list[str] | None = None) -> Any:
    parser = make_parser(__doc__.split("\n\n")[0] if __doc__ else BENCH)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--items", type=int, help="items of the project (default: the plan's)")
    parser.add_argument("--annotators", type=int, help="C, the annotators looping")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database part)",
    )
    parser.add_argument(
        "--labelfarm-cmd", help="how to run labelfarm (default: the console script)"
    )
    return parser.parse_args(argv)


def refresh(target: ScoresTarget, project_id: int) -> int:
    """Start a score job through the API: its id."""
    answer = target.api.call("POST", f"/api/v1/projects/{project_id}/scores/refresh", expect=(202,))
    return int(answer["job"]["id"])


def measure(target: ScoresTarget, plan: Plan, metrics: dict[str, float], rows: list[dict]) -> None:
    p, api = target.prefix, target.api
    project_id = target.create_project("scored")
    import_s = target.import_items(project_id, plan.items)
    console.log(f"{p}: imported {plan.items:,} items in {import_s:.1f} s")
    fill_s = fill_model_outputs(target.env["LABELFARM_DATABASE_URL"], project_id, len(LABELS))
    console.log(f"{p}: model outputs written in {fill_s:.1f} s (setup)")
    tokens = target.create_annotators(plan.annotators)
    with target.worker():
        job = wait_job(api, refresh(target, project_id), plan.job_timeout_s)
        alone_s = job_seconds(job)
        scored = int(job["result"]["scored"])
        console.log(f"{p}: refresh of {scored:,} scores alone: {alone_s:.1f} s")
        metrics[f"{p}.refresh_s"] = alone_s
        metrics[f"{p}.refresh_scores_per_s"] = scored / alone_s if alone_s else 0.0
        metrics[f"{p}.refresh_batches"] = int(job["result"]["batches"])
        for part in ("read_s", "score_s", "write_s"):
            metrics[f"{p}.refresh_{part}"] = float(job["result"][part])
        rows.append({"target": p, "phase": "refresh alone", "scored": scored, "s": alone_s})
        window = LoadWindow(plan.min_load_s, plan.timeout_s, plan.warmup_s)
        idle = run_load(target, project_id, tokens, window, plan.client, plan.items)
        _record(p, "idle", idle, None, metrics, rows)
        window = LoadWindow(max(plan.min_load_s, alone_s), plan.timeout_s, plan.warmup_s, True)
        args = (target, project_id, tokens, window, plan.client, plan.items)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            running = pool.submit(run_load, *args)
            time.sleep(plan.warmup_s)
            job_id = refresh(target, project_id)
            wait_running(api, job_id)
            busy = running.result()
        job = wait_job(api, job_id, plan.job_timeout_s)
        busy = while_running(busy, job)
        _record(p, "during_refresh", busy, job, metrics, rows)


def _record(
    p: str,
    phase: str,
    load: dict[str, Any],
    job: dict[str, Any] | None,
    metrics: dict[str, float],
    rows: list[dict],
) -> None:
    errors = sum(load["errors"].values())
    for op in ("next", "submit"):
        metrics[f"{p}.{op}_p99_ms_{phase}"] = float(load[f"{op}_ms"]["p99"])
        if f"{op}_ms_window" in load:
            metrics[f"{p}.{op}_p99_ms_window_{phase}"] = float(load[f"{op}_ms_window"]["p99"])
    metrics[f"{p}.cycles_per_s_{phase}"] = float(load["cycles_per_s"])
    metrics[f"{p}.errors_{phase}"] = errors
    metrics[f"{p}.invariant_violations_{phase}"] = int(load["invariant_violations"])
    row = {
        "target": p,
        "phase": phase,
        "next_p99_ms": float(load["next_ms"]["p99"]),
        "submit_p99_ms": float(load["submit_ms"]["p99"]),
        "next_calls": int(load["next_ms"].get("n", 0)),
        "cycles_per_s": float(load["cycles_per_s"]),
        "errors": errors,
        "violations": int(load["invariant_violations"]),
    }
    if job is not None:
        row["job_s"] = job_seconds(job)
        metrics[f"{p}.refresh_s_under_load"] = row["job_s"]
    rows.append(row)
    console.log(f"{p}: {phase}: next p99 {row['next_p99_ms']:.0f} ms, "
                f"submit p99 {row['submit_p99_ms']:.0f} ms")  # fmt: skip


def report(metrics: dict[str, float], rows: list[dict], backends: list[str]) -> None:
    table = Table(title="scores benchmark")
    for name in ("target", "phase", "next p99 ms", "submit p99 ms", "cycles/s", "errors",
                 "violations", "s"):  # fmt: skip
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["target"], r["phase"], _f(r.get("next_p99_ms")), _f(r.get("submit_p99_ms")),
            _f(r.get("cycles_per_s")), _f(r.get("errors")), _f(r.get("violations")),
            _f(r.get("s", r.get("job_s"))),
        )  # fmt: skip
    out = wide_console()
    out.print(table)
    parts = []
    for p in backends:
        if f"{p}.next_p99_ms_idle" not in metrics:
            parts.append(f"{p}: failed")
            continue
        parts.append(
            f"{p}: refresh {metrics[f'{p}.refresh_s']:.1f} s, next p99 "
            f"{metrics[f'{p}.next_p99_ms_idle']:.0f} → "
            f"{metrics.get(f'{p}.next_p99_ms_during_refresh', 0):.0f} ms, submit p99 "
            f"{metrics[f'{p}.submit_p99_ms_idle']:.0f} → "
            f"{metrics.get(f'{p}.submit_p99_ms_during_refresh', 0):.0f} ms (idle → refresh)"
        )
    out.print("scores: " + "; ".join(parts))


def _f(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _client() -> str:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    plan = replace(
        plan,
        items=args.items or plan.items,
        annotators=args.annotators or plan.annotators,
        client=_client(),
    )
    log_dir = Path(tempfile.mkdtemp(prefix="labelfarm-bench-scores-"))
    machine = machine_info()
    warn_if_busy(console)
    metrics: dict[str, float] = {"items": plan.items, "annotators": plan.annotators}
    rows: list[dict] = []
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    failed = False
    for backend in backends:
        target = ScoresTarget(backend, args.pg_url, log_dir, args.labelfarm_cmd)
        try:
            target.start()
            measure(target, plan, metrics, rows)
        except BenchError as exc:
            console.print(f"[red]{backend}: {exc}[/red]  (logs: {log_dir})")
            failed = True
        finally:
            target.stop()
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, metrics, rows)
        console.log(f"results written to {path}")
    report(metrics, rows, backends)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

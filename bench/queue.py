"""Queue benchmark: import, next → submit under concurrent annotators, export.

For each target (labelfarm on SQLite and on PostgreSQL; Label Studio with ``--peer``) this
starts a real server on 127.0.0.1 and, over HTTP:

1. imports a 10,000-item project (JSONL in the request body) and times it;
2. runs C simulated annotators (each its own user and token) looping next → submit for a fixed
   time on a fresh 10,000-item project per C, from a separate load-client process
   (``_loadclient.py``), recording cycles/s, latency percentiles, errors, invariant violations,
   and the CPU of the client and the server;
3. does the same at C=50 on a 1,000,000-item project (import timed too) — cost must not grow
   with project size;
4. times a streamed export of 100,000 annotated items and the server's peak RSS during it.

With ``--ordering score`` every labelfarm project orders its queue by the active-learning
score (``items.score``), each item given a uniform random score after its import (what a
score refresh leaves; ``_queue_scores.py``): the same phases measure the queue under that
ordering. Results go to ``bench/results/queue-score-…`` then.

Run from the repository root with the project installed::

    python bench/queue.py --quick
    python bench/queue.py --backends sqlite,postgresql --peer label-studio --json out.json
    python bench/queue.py --ordering score
"""

from __future__ import annotations

import os
import sys

# Running ``python bench/queue.py`` puts bench/ first on sys.path, where this very file would
# shadow the standard library's ``queue`` (imported by asyncio, concurrent.futures, ...).
# Move bench/ behind the standard library; ``_common`` and friends are still found.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import tempfile  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rich.console import Console  # noqa: E402

from _common import (  # noqa: E402
    CpuMeter,
    PeakRSS,
    default_results_path,
    machine_info,
    make_parser,
    warn_if_busy,
    write_json,
)
from _labelfarm import LabelfarmTarget  # noqa: E402
from _labelstudio import LabelStudioTarget  # noqa: E402
from _queue_load import run_load  # noqa: E402
from _queue_report import Results, report  # noqa: E402
from _queue_scores import ScoredTarget  # noqa: E402
from _targets import BenchError, Target, timed  # noqa: E402

BENCH = "queue"
console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    small_items: int
    large_items: int
    export_items: int
    concurrency: tuple[int, ...]
    duration_s: float
    timeout_s: float
    client: str
    large_concurrency: int = 50

    @property
    def annotators(self) -> int:
        return max(*self.concurrency, self.large_concurrency)


FULL = Plan(10_000, 1_000_000, 100_000, (1, 10, 50, 200), 20.0, 30.0, "aiohttp")
QUICK = Plan(10_000, 50_000, 10_000, (1, 10, 50), 3.0, 10.0, "aiohttp")


def peer_plan(plan: Plan, duration_s: float | None, timeout_s: float | None, quick: bool) -> Plan:
    """Label Studio is ~300× slower: 10,000 items only, longer windows, generous timeouts."""
    return replace(
        plan,
        large_items=0,
        duration_s=duration_s or (10.0 if quick else 60.0),
        timeout_s=timeout_s or (30.0 if quick else 120.0),
    )


def parse_args(argv: list[str] | None = None) -> Any:
    parser = make_parser(__doc__.split("\n\n")[0] if __doc__ else BENCH)
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="labelfarm databases to measure, comma-separated (sqlite,postgresql)",
    )
    parser.add_argument("--peer", choices=["label-studio"], help="also measure this tool")
    parser.add_argument("--peer-backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--peer-duration", type=float, help="seconds per load run for the peer")
    parser.add_argument("--peer-timeout", type=float, help="per-request timeout for the peer")
    parser.add_argument("--client", choices=["aiohttp", "httpx"], help="load client HTTP library")
    parser.add_argument(
        "--compare-clients",
        action="store_true",
        help="repeat the C=50 run with the other HTTP library (client CPU)",
    )
    parser.add_argument("--duration", type=float, help="seconds per labelfarm load run")
    parser.add_argument(
        "--ordering",
        choices=["fifo", "score"],
        default="fifo",
        help="labelfarm projects' queue order (score: random scores filled after each import)",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server for the postgresql backends (no database part)",
    )
    parser.add_argument(
        "--labelfarm-cmd", help="how to run labelfarm (default: the installed console script)"
    )
    return parser.parse_args(argv)


def default_client() -> str:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print(
            "warning: aiohttp is not installed (pip install -e '.[bench]'): the load client "
            "falls back to httpx, whose connection pool is the bottleneck from C=50 on",
            file=sys.stderr,
        )
        return "httpx"
    return "aiohttp"


def build_targets(args: Any, log_dir: Path) -> list[tuple[Target, bool]]:
    """(target, is_peer) pairs in the order they run."""
    targets: list[tuple[Target, bool]] = []
    for backend in filter(None, (b.strip() for b in args.backends.split(","))):
        kind = ScoredTarget if args.ordering == "score" else LabelfarmTarget
        target = kind(backend, args.pg_url, log_dir, args.labelfarm_cmd)
        targets.append((target, False))
    if args.peer == "label-studio":
        targets.append((LabelStudioTarget(args.peer_backend, args.pg_url, log_dir), True))
    return targets


def measure(target: Target, plan: Plan, results: Results, compare_clients: bool) -> None:
    """Every phase against one running target; rows and metrics go into ``results``."""
    p = target.prefix
    with PeakRSS(target.server_pid) as rss:
        with timed() as setup:
            tokens = target.create_annotators(plan.annotators)
        results.add_setup(p, len(tokens), setup[0], rss.take())
        console.log(f"{p}: {len(tokens)} annotators in {setup[0]:.1f} s")
        for c in plan.concurrency:
            project_id = target.create_project(f"bench c{c}")
            import_s = target.import_items(project_id, plan.small_items)
            results.add_import(p, "small", plan.small_items, import_s, rss.take())
            load = run_load(target, project_id, tokens[:c], plan, plan.client, plan.small_items)
            results.add_load(p, "small", plan.small_items, load, rss.take())
            console.log(f"{p}: C={c}: {load['cycles_per_s']:.1f} cycles/s")
            if compare_clients and c == plan.large_concurrency:
                other = "httpx" if plan.client == "aiohttp" else "aiohttp"
                project_id = target.create_project(f"bench c{c} {other}")
                target.import_items(project_id, plan.small_items)
                load = run_load(target, project_id, tokens[:c], plan, other, plan.small_items)
                results.add_load(p, "small", plan.small_items, load, rss.take(), tag=other)
                console.log(f"{p}: C={c} with {other}: {load['cycles_per_s']:.1f} cycles/s")
        if plan.large_items:
            measure_large(target, plan, tokens, rss, results)
        with timed() as fill:
            project_id = target.create_annotated_project("bench export", plan.export_items)
        console.log(f"{p}: {plan.export_items:,} annotated items ready in {fill[0]:.1f} s")
        rss.take()
        with CpuMeter(target.server_pid) as server_cpu:
            export = target.export(project_id, rss)
        results.add_export(p, plan.export_items, export, server_cpu.pct_of_one_core)


def measure_large(
    target: Target, plan: Plan, tokens: list[str], rss: PeakRSS, results: Results
) -> None:
    p, c = target.prefix, plan.large_concurrency
    project_id = target.create_project("bench large")
    import_s = target.import_items(project_id, plan.large_items)
    results.add_import(p, "large", plan.large_items, import_s, rss.take())
    console.log(f"{p}: imported {plan.large_items:,} items in {import_s:.1f} s")
    load = run_load(target, project_id, tokens[:c], plan, plan.client, plan.large_items)
    results.add_load(p, "large", plan.large_items, load, rss.take())
    console.log(f"{p}: C={c} on {plan.large_items:,} items: {load['cycles_per_s']:.1f} cycles/s")


def run_target(target: Target, plan: Plan, results: Results, compare_clients: bool) -> bool:
    console.log(f"{target.prefix}: starting server")
    try:
        target.start()
        measure(target, plan, results, compare_clients)
    except BenchError as exc:
        console.print(f"[red]{target.prefix}: {exc}[/red]")
        results.failed.append(target.prefix)
        return False
    finally:
        target.stop()
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = replace(
        base, client=args.client or default_client(), duration_s=args.duration or base.duration_s
    )
    log_dir = Path(tempfile.mkdtemp(prefix="labelfarm-bench-queue-"))
    machine = machine_info()
    warn_if_busy(console)
    results = Results(quick=args.quick)
    for target, is_peer in build_targets(args, log_dir):
        target_plan = (
            peer_plan(plan, args.peer_duration, args.peer_timeout, args.quick) if is_peer else plan
        )
        run_target(target, target_plan, results, args.compare_clients and not is_peer)
        if isinstance(target, ScoredTarget) and target.fill_seconds:
            results.metrics[f"{target.prefix}.score_fill_s_max"] = max(target.fill_seconds)
    results.metrics["score_ordering"] = int(args.ordering == "score")
    name = BENCH if args.ordering == "fifo" else f"{BENCH}-{args.ordering}"
    path = args.json or (None if args.quick else default_results_path(name, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, results.metrics, results.rows)
        console.log(f"results written to {path}")
    if results.failed:
        console.log(f"server logs: {log_dir}")
    report(results)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())

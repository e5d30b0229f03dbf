"""Abuse benchmark: annotators' latency while one address floods the sign-in with wrong passwords.

For each database (SQLite, PostgreSQL) this starts a real ``labelfarm serve`` on 127.0.0.1 and
runs 20 annotators looping next → submit (``_loadclient.py``, its own process) three times:

1. quiet: no flood;
2. flood: 8 concurrent loops posting wrong passwords for one annotator's account from one
   address, as fast as the server answers, with the sign-in limits on (the defaults);
3. flood_unlimited: the same against a server started with ``LABELFARM_LOGIN_LIMITS=false``,
   so that every attempt is hashed (argon2id) — the worst a flood can cost.

It reports each phase's annotator latency (the p50/p99 of ``next`` and ``submit`` requests;
"annotator p99" is the larger of the two p99s), the flood's answers, and how many failed
attempts one address made before its first 429. PostgreSQL runs use a database of their own,
dropped afterwards.

Run from the repository root with the project installed::

    python bench/abuse.py --quick
    python bench/abuse.py --json out.json
"""

from __future__ import annotations

import os
import sys

# ``python bench/abuse.py`` puts bench/ first on sys.path, where queue.py would shadow the
# standard library's ``queue``: move bench/ behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import asyncio  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from rich.console import Console  # noqa: E402

from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    print_report,
    warn_if_busy,
    write_json,
)
from _labelfarm import LabelfarmTarget, recreate_pg_database  # noqa: E402
from _queue_load import run_load  # noqa: E402
from _targets import BenchError  # noqa: E402

BENCH = "abuse"
ANNOTATORS = 20
FLOOD_LOOPS = 8
TARGET_P99_MS = 100.0
console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    items: int
    duration_s: float
    timeout_s: float = 30.0
    client: str = "aiohttp"


FULL = Plan(items=40_000, duration_s=20.0)
QUICK = Plan(items=6_000, duration_s=3.0)


class AbuseTarget(LabelfarmTarget):
    """``labelfarm serve`` with extra environment, on a PostgreSQL database of its own."""

    def __init__(self, backend: str, pg_url: str, log_dir: Path, env: dict[str, str]) -> None:
        super().__init__(backend, pg_url, log_dir)
        self.extra_env = env
        self.pg_database = f"labelfarm_abuse_{uuid.uuid4().hex[:8]}"

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = {**os.environ, "LABELFARM_DATA_DIR": str(data_dir), **self.extra_env}
        if self.backend == "sqlite":
            env["LABELFARM_DATABASE_URL"] = f"sqlite:///{data_dir}/labelfarm.db"
        else:
            recreate_pg_database(self.pg_server_url, self.pg_database)
            host_part = self.pg_server_url.split("://", 1)[1]
            env["LABELFARM_DATABASE_URL"] = f"postgresql+psycopg://{host_part}/{self.pg_database}"
        return env

    def stop(self) -> None:
        super().stop()
        if self.backend == "postgresql":
            try:
                with psycopg.connect(f"{self.pg_server_url}/postgres", autocommit=True) as conn:
                    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                    conn.execute(drop.format(sql.Identifier(self.pg_database)))
            except psycopg.Error as exc:
                console.log(f"could not drop {self.pg_database}: {exc}")


@dataclass
class Flood:
    """``FLOOD_LOOPS`` loops posting a wrong password, on a thread with its own event loop."""

    base_url: str
    username: str
    answers: Counter[int] = field(default_factory=Counter)
    hashed_ms: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Flood:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=FLOOD_LOOPS)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=60) as http:
            await asyncio.gather(*(self._loop(http) for _ in range(FLOOD_LOOPS)))

    async def _loop(self, http: httpx.AsyncClient) -> None:
        body = {"username": self.username, "password": "a wrong password, again"}
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                r = await http.post("/api/v1/auth/login", json=body)
            except httpx.HTTPError:
                self.answers[0] += 1
                await asyncio.sleep(0.05)
                continue
            self.answers[r.status_code] += 1
            if r.status_code == 401:
                self.hashed_ms.append((time.perf_counter() - t0) * 1000)


def failures_before_429(base_url: str, username: str, most: int = 200) -> int | None:
    """Wrong passwords one after another from one address: how many fail (401) before the
    first 429 (None: never refused)."""
    body = {"username": username, "password": "a wrong password, again"}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for failed in range(most):
            status = http.post("/api/v1/auth/login", json=body).status_code
            if status == 429:
                return failed
            if status != 401:
                raise BenchError(f"sign-in answered {status}")
    return None


def _phase(
    target: AbuseTarget, plan: Plan, tokens: list[str], phase: str, flood_user: str | None
) -> dict[str, Any]:
    project_id = target.create_project(f"abuse {phase}")
    target.import_items(project_id, plan.items)
    refused_after = None
    if flood_user is None:
        load, flood = run_load(target, project_id, tokens, plan, plan.client, plan.items), None
    else:
        if phase == "flood":
            refused_after = failures_before_429(target.base_url, flood_user)
        with Flood(target.base_url, flood_user) as flood:
            time.sleep(0.5)  # the flood is under way before the annotators start
            load = run_load(target, project_id, tokens, plan, plan.client, plan.items)
    nxt, sub = load["next_ms"], load["submit_ms"]
    errors = sum(load["errors"].values())
    row: dict[str, Any] = {
        "db": target.backend,
        "phase": phase,
        "cycles_per_s": load["cycles_per_s"],
        "p50_ms": max(nxt["p50"], sub["p50"]),
        "p99_ms": max(nxt["p99"], sub["p99"]),
        "next_p99_ms": nxt["p99"],
        "submit_p99_ms": sub["p99"],
        "max_ms": max(nxt["max"], sub["max"]),
        "errors": errors,
        "server_cpu_pct": load["server_cpu_pct"],
    }
    if flood is not None:
        row.update(
            login_401=flood.answers[401],
            login_429=flood.answers[429],
            login_503=flood.answers[503],
            login_429_after=refused_after,
        )
    if errors or load["invariant_violations"]:
        console.log(f"{target.backend} {phase}: errors {load['errors']} {load['error_samples']}")
    console.log(
        f"{target.backend} {phase}: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
        f"{row['cycles_per_s']:.0f} cycles/s"
    )
    return row


def _serve(backend: str, args: Any, log_dir: Path, plan: Plan, limits: bool) -> list[dict]:
    env = {"LABELFARM_LOGIN_LIMITS": "true" if limits else "false"}
    target = AbuseTarget(backend, args.pg_url, log_dir, env)
    try:
        target.start()
        tokens = target.create_annotators(ANNOTATORS + 1)
        flood_user = "annotator000"  # an account with a password: every attempt is checked
        work = tokens[1:]
        if limits:
            return [
                _phase(target, plan, work, "quiet", None),
                _phase(target, plan, work, "flood", flood_user),
            ]
        return [_phase(target, plan, work, "flood_unlimited", flood_user)]
    finally:
        target.stop()


def metrics_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for row in rows:
        db, phase = row["db"], row["phase"]
        metrics[f"{db}.annotator_p99_ms.{phase}"] = round(row["p99_ms"], 2)
        metrics[f"{db}.annotator_p50_ms.{phase}"] = round(row["p50_ms"], 2)
        metrics[f"{db}.cycles_per_s.{phase}"] = round(row["cycles_per_s"], 1)
        if "login_401" in row:
            metrics[f"{db}.login_attempts_hashed.{phase}"] = row["login_401"]
            metrics[f"{db}.login_attempts_refused.{phase}"] = row["login_429"] + row["login_503"]
        if phase == "flood" and row.get("login_429_after") is not None:
            metrics[f"{db}.login_429_after"] = row["login_429_after"]
    return metrics


COLUMNS = [
    "db",
    "phase",
    ("cycles_per_s", "cycles/s"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("next_p99_ms", "next p99"),
    ("submit_p99_ms", "submit p99"),
    ("max_ms", "max ms"),
    ("errors", "errors"),
    ("login_401", "401"),
    ("login_429", "429"),
    ("login_503", "503"),
    ("login_429_after", "401s before 429"),
    ("server_cpu_pct", "server CPU %"),
]


def summary_line(rows: list[dict[str, Any]], failed: list[str]) -> str:
    worst = max((r["p99_ms"] for r in rows), default=float("nan"))
    verdict = "meets" if rows and worst <= TARGET_P99_MS and not failed else "MISSES"
    parts = [f"{r['db']}/{r['phase']} {r['p99_ms']:.0f}" for r in rows]
    return (
        f"abuse: annotators' p99 ms {', '.join(parts)}; worst {worst:.0f} ms {verdict} the "
        f"{TARGET_P99_MS:.0f} ms target" + (f"; failed: {', '.join(failed)}" if failed else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__.split("\n\n")[0] if __doc__ else BENCH)
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server for the postgresql backend (no database part)",
    )
    parser.add_argument("--duration", type=float, help="seconds per phase")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.duration:
        plan = Plan(plan.items, args.duration, plan.timeout_s, plan.client)
    machine = machine_info()
    warn_if_busy(console)
    log_dir = Path(tempfile.mkdtemp(prefix="labelfarm-bench-abuse-"))
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for backend in filter(None, (b.strip() for b in args.backends.split(","))):
        for limits in (True, False):
            try:
                rows.extend(_serve(backend, args, log_dir, plan, limits))
            except BenchError as exc:
                console.print(f"[red]{backend}: {exc}[/red]")
                failed.append(f"{backend}{'' if limits else ' (no limits)'}")
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, metrics_of(rows), rows)
        console.log(f"results written to {path}")
    if failed:
        console.log(f"server logs: {log_dir}")
    print_report("abuse benchmark", COLUMNS, rows, summary_line(rows, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Collects the queue benchmark's figures as rows and named metrics, and prints them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from _common import Metrics, Row, print_summary, print_table
from _targets import Export

PEER = "label-studio"
EXPORT_REFERENCE = 100_000
LATENCY_KEYS = ("p50", "p95", "p99")

COLUMNS = [
    ("target", "target"),
    ("phase", "phase"),
    ("items", "items"),
    ("annotators", "C"),
    ("cycles_per_s", "cycles/s"),
    ("next_p50_ms", "next p50 ms"),
    ("next_p99_ms", "next p99 ms"),
    ("submit_p50_ms", "submit p50 ms"),
    ("submit_p99_ms", "submit p99 ms"),
    ("errors", "errors"),
    ("invariant_violations", "violations"),
    ("client_cpu_pct", "client CPU %"),
    ("server_cpu_pct", "server CPU %"),
    ("items_per_s", "items/s"),
    ("seconds", "s"),
    ("server_rss_mb", "server RSS MB"),
]

# (metric suffix, label, better): the head-to-head table against the peer.
COMPARED = [
    ("import_items_per_s", "import items/s (10k)", "higher"),
    ("cycles_per_s_c1", "cycles/s, C=1", "higher"),
    ("cycles_per_s_c10", "cycles/s, C=10", "higher"),
    ("cycles_per_s_c50", "cycles/s, C=50", "higher"),
    ("cycles_per_s_c200", "cycles/s, C=200", "higher"),
    ("next_p99_ms_c50", "next p99 ms, C=50", "lower"),
    ("submit_p99_ms_c50", "submit p99 ms, C=50", "lower"),
    ("export_100k_s", "export 100k s", "lower"),
    ("export_peak_rss_mb", "export peak RSS MB", "lower"),
    ("server_peak_rss_mb", "server peak RSS MB", "lower"),
]


@dataclass
class Results:
    quick: bool
    rows: list[Row] = field(default_factory=list)
    metrics: Metrics = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    _small_imports: dict[str, list[float]] = field(default_factory=dict)
    _import_rows: dict[str, Row] = field(default_factory=dict)

    def _bump(self, name: str, value: float | int) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + value

    def add_import(self, p: str, scope: str, n: int, seconds: float, rss_mb: float) -> None:
        self._track_rss(p, rss_mb)
        rate = n / seconds if seconds else 0.0
        if scope == "small":
            rates = self._small_imports.setdefault(p, [])
            rates.append(rate)
            self.metrics[f"{p}.import_items_per_s"] = statistics.median(rates)
            if p in self._import_rows:  # one row for all the 10k imports: their median
                first = self._import_rows[p]
                first.update(items_per_s=statistics.median(rates), imports=len(rates))
                first.update(
                    seconds=n / first["items_per_s"],
                    server_rss_mb=max(first["server_rss_mb"], rss_mb),
                )
                return
        else:
            self.metrics[f"{p}.import_items_per_s_1m"] = rate
            self.metrics[f"{p}.large_project_items"] = n
        row: Row = {
            "target": p,
            "phase": "import",
            "items": n,
            "seconds": seconds,
            "items_per_s": rate,
            "server_rss_mb": rss_mb,
            "imports": 1,
        }
        if scope == "small":
            self._import_rows[p] = row
        self.rows.append(row)

    def add_load(
        self,
        p: str,
        scope: str,
        n: int,
        load: dict[str, Any],
        rss_mb: float,
        tag: str | None = None,
    ) -> None:
        self._track_rss(p, rss_mb)
        c = int(load["annotators"])
        suffix = f"_c{c}" + ("_1m" if scope == "large" else "") + (f"_{tag}" if tag else "")
        errors = sum(load["errors"].values())
        figures: dict[str, float] = {
            "cycles_per_s": load["cycles_per_s"],
            "errors": errors,
            "invariant_violations": load["invariant_violations"],
            "client_cpu_pct": load["client_cpu_pct"],
            "client_cpu_us_per_cycle": load["client_cpu_us_per_cycle"],
            "server_cpu_pct": load["server_cpu_pct"],
        }
        for op in ("next", "submit"):
            for key in LATENCY_KEYS:
                figures[f"{op}_{key}_ms"] = load[f"{op}_ms"][key]
        for name, value in figures.items():
            self.metrics[f"{p}.{name}{suffix}"] = value
        self._bump(f"{p}.invariant_violations", load["invariant_violations"])
        self._bump(f"{p}.errors", errors)
        phase = f"C={c}" + (f" {tag}" if tag else "")
        self.rows.append(
            {
                "target": p,
                "phase": phase,
                "items": n,
                "annotators": c,
                "client": load["client"],
                "cycles": load["cycles"],
                "seconds": load["wall_s"],
                **figures,
                "server_rss_mb": rss_mb,
                "error_kinds": load["errors"],
                "error_samples": load["error_samples"],
                "handed": load["handed"],
                "overlap_violations": load["overlap_violations"],
                "duplicate_violations": load["duplicate_violations"],
                "resumed": load["resumed"],
                "late": load["late"],
                "empty": load["empty"],
                "cancelled": load["cancelled"],
            }
        )

    def add_export(self, p: str, n: int, export: Export, server_cpu_pct: float) -> None:
        self._track_rss(p, export.peak_rss_mb)
        scale = EXPORT_REFERENCE / n
        self.metrics[f"{p}.export_100k_s"] = export.seconds * scale
        self.metrics[f"{p}.export_items"] = n
        self.metrics[f"{p}.export_mb"] = export.n_bytes / 2**20
        self.metrics[f"{p}.export_peak_rss_mb"] = export.peak_rss_mb
        self.rows.append(
            {
                "target": p,
                "phase": "export",
                "export_100k_s": export.seconds * scale,
                "server_cpu_pct": server_cpu_pct,
                "items": n,
                "seconds": export.seconds,
                "items_per_s": n / export.seconds if export.seconds else 0.0,
                "server_rss_mb": export.peak_rss_mb,
                "export_mb": export.n_bytes / 2**20,
            }
        )

    def _track_rss(self, p: str, mb: float) -> None:
        """The server's peak RSS over the measured phases (not user setup: argon2 is greedy)."""
        name = f"{p}.server_peak_rss_mb"
        self.metrics[name] = max(self.metrics.get(name, 0.0), mb)

    def add_setup(self, p: str, n: int, seconds: float, rss_mb: float) -> None:
        self.metrics[f"{p}.annotator_setup_s"] = seconds
        self.metrics[f"{p}.server_setup_rss_mb"] = rss_mb
        row = {
            "target": p,
            "phase": "users",
            "items": n,
            "seconds": seconds,
            "server_rss_mb": rss_mb,
        }
        self.rows.append(row)

    def prefixes(self) -> list[str]:
        seen: list[str] = []
        for row in self.rows:
            if row["target"] not in seen:
                seen.append(row["target"])
        return seen


def comparison_rows(results: Results) -> tuple[list[tuple[str, str]], list[Row]]:
    ours = [p for p in results.prefixes() if p != PEER]
    columns = [("metric", "metric"), *((p, p) for p in ours), (PEER, PEER)]
    columns += [(f"{p}/LS", f"{p}/LS") for p in ours] + [("better", "better")]
    rows = []
    for suffix, label, better in COMPARED:
        peer = results.metrics.get(f"{PEER}.{suffix}")
        row: Row = {"metric": label, PEER: peer, "better": better}
        for p in ours:
            value = results.metrics.get(f"{p}.{suffix}")
            row[p] = value
            row[f"{p}/LS"] = value / peer if value is not None and peer else None
        rows.append(row)
    return columns, rows


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _target_summary(m: Metrics, p: str) -> str:
    bits = []
    if f"{p}.import_items_per_s" in m:
        bits.append(f"import {_num(m[f'{p}.import_items_per_s'])} items/s")
    if f"{p}.cycles_per_s_c50" in m:
        bits.append(
            f"C=50 {_num(m[f'{p}.cycles_per_s_c50'])} cycles/s"
            f" (next p99 {_num(m[f'{p}.next_p99_ms_c50'])} ms)"
        )
    if f"{p}.cycles_per_s_c50_1m" in m:
        large = m[f"{p}.large_project_items"]
        bits.append(f"at {large:,.0f} items {_num(m[f'{p}.cycles_per_s_c50_1m'])}")
    if f"{p}.export_100k_s" in m:
        scaled = "" if m[f"{p}.export_items"] == EXPORT_REFERENCE else " (scaled)"
        bits.append(f"export 100k {_num(m[f'{p}.export_100k_s'])} s{scaled}")
    bits.append(f"{m.get(f'{p}.invariant_violations', 0):g} violations")
    return f"{p}: " + ", ".join(bits)


def summary_line(results: Results) -> str:
    m = results.metrics
    parts = [_target_summary(m, p) for p in results.prefixes()]
    line = f"queue{' --quick' if results.quick else ''}: " + "; ".join(parts or ["no results"])
    client_cpu = [
        v
        for k, v in m.items()
        if ".client_cpu_pct_c" in k and not k.endswith(("_httpx", "_aiohttp"))
    ]
    if client_cpu:
        line += f"; load client ≤ {max(client_cpu):.0f}% of one core"
    if results.failed:
        line += f"; FAILED: {', '.join(results.failed)}"
    return line


def report(results: Results) -> None:
    print_table("queue benchmark", COLUMNS, results.rows)
    if PEER in results.prefixes() and len(results.prefixes()) > 1:
        columns, rows = comparison_rows(results)
        print_table("labelfarm vs Label Studio 1.23.2", columns, rows)
    print_summary(summary_line(results))

"""The models benchmark's figures: rows, named metrics, the targets met or missed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from _common import Metrics, Row, print_summary, print_table

COLUMNS = [
    ("target", "db"),
    ("what", "what"),
    ("predictor", "predictor"),
    ("items", "items"),
    ("value", "value"),
    ("unit", "unit"),
    ("goal", "target"),
    ("verdict", "pass"),
    ("detail", "detail"),
]

# metric -> (comparison, bound, unit, what), checked in the table (on 2 cores)
TARGETS = {
    "best_accuracy_pct": (">=", 85.0, "%", "best predictor's test accuracy"),
    "best_train_s": ("<=", 120.0, "s", "its training"),
    "predict_10k_s": ("<=", 20.0, "s", "predicting 10,000 items (local)"),
    "worker_peak_rss_mb": ("<=", 1024.0, "MB", "worker process tree peak RSS"),
}
P99_BOUND_MS = 100.0


@dataclass
class Results:
    quick: bool
    rows: list[Row] = field(default_factory=list)
    metrics: Metrics = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool]] = field(default_factory=list)
    first_target: str = ""  # the database whose figures name the unprefixed metrics

    def add(self, target: str, what: str, value: float, unit: str, **extra: Any) -> Row:
        row: Row = {"target": target, "what": what, "value": value, "unit": unit, **extra}
        self.rows.append(row)
        return row

    def check(self, row: Row, op: str, bound: float) -> None:
        ok = row["value"] >= bound if op == ">=" else row["value"] <= bound
        row["goal"] = f"{op} {bound:g} {row['unit']}"
        row["verdict"] = "pass" if ok else "FAIL"
        self.verdicts.append((f"{row['target']} {row['what']}", ok))

    def add_training(self, target: str, predictor: str, job: dict[str, Any], version: Any) -> None:
        accuracy = float(version["accuracy"])
        seconds = float(job["seconds"])
        detail = (
            f"v{version['version']}: fit {version.get('train_seconds') or 0:.1f} s, "
            f"{version.get('n_train')} train / {version.get('n_eval')} eval, "
            f"macro-F1 {version.get('macro_f1', 0):.3f}, ECE {version.get('ece', 0):.3f}"
        )
        self.add(target, "test accuracy", 100 * accuracy, "%", predictor=predictor, detail=detail)
        self.add(
            target, "train job", seconds, "s", predictor=predictor, items=version.get("n_train")
        )
        if target == self.first_target:
            self.metrics[f"accuracy.{predictor}"] = accuracy
            self.metrics[f"train_s.{predictor}"] = seconds

    def add_best(self, target: str, predictor: str) -> None:
        if target != self.first_target:
            return
        accuracy = 100 * float(self.metrics[f"accuracy.{predictor}"])
        row = self.add(target, "best: test accuracy", accuracy, "%", predictor=predictor)
        self.check(row, ">=", TARGETS["best_accuracy_pct"][1])
        seconds = float(self.metrics[f"train_s.{predictor}"])
        row = self.add(target, "best: train job", seconds, "s", predictor=predictor)
        self.check(row, "<=", TARGETS["best_train_s"][1])

    def add_predict(
        self, target: str, where: str, n: int, seconds: float, predictor: str, check: bool
    ) -> None:
        rate = n / seconds if seconds else 0.0
        self.add(
            target,
            f"predict ({where})",
            rate,
            "items/s",
            items=n,
            predictor=predictor,
            detail=f"{seconds:.1f} s",
        )
        if check:
            per_10k = 10_000 / rate if rate else 0.0
            row = self.add(
                target,
                f"predict 10,000 items ({where})",
                per_10k,
                "s",
                predictor=predictor,
                items=n,
            )
            self.check(row, "<=", TARGETS["predict_10k_s"][1])
        first = target == self.first_target or f"predict_items_per_s.{where}" not in self.metrics
        if first and where in ("local", "ray"):
            self.metrics[f"predict_items_per_s.{where}"] = rate

    def add_rss(self, target: str, peak_mb: float) -> None:
        row = self.add(target, "worker peak RSS", peak_mb, "MB")
        self.check(row, "<=", TARGETS["worker_peak_rss_mb"][1])
        self.metrics["worker_peak_rss_mb"] = max(self.metrics.get("worker_peak_rss_mb", 0), peak_mb)

    def add_load(self, target: str, phase: str, load: dict[str, Any], job_s: float | None) -> None:
        """C annotators' next/submit p99; ``phase`` is ``idle`` or ``during_job``."""
        during = phase == "during_job"
        cycles = load["cycles"]
        errors = sum(load["errors"].values())
        detail = (
            f"C={load['annotators']}, {cycles} cycles in {load['wall_s']:.1f} s, "
            f"{errors} errors, {load['invariant_violations']} violations"
        )
        if job_s is not None:
            n = load["next_ms"]["n"]
            detail += f"; predict job {job_s:.1f} s, {n} next calls while it ran"
        for op in ("next", "submit"):
            p99 = float(load[f"{op}_ms"]["p99"])
            if f"{op}_ms_window" in load:  # the whole window's, the job's part above
                window = float(load[f"{op}_ms_window"]["p99"])
                self.metrics[f"{target}.{op}_p99_ms_window_{phase}"] = window
            label = f"{op} p99 ({'during predict job' if during else 'no job'})"
            row = self.add(target, label, p99, "ms", detail=detail)
            if during:
                self.check(row, "<=", P99_BOUND_MS)
            self.metrics[f"{target}.{op}_p99_ms_{phase}"] = p99
        self.metrics[f"{target}.cycles_per_s_{phase}"] = load["cycles_per_s"]
        self.metrics[f"{target}.errors_{phase}"] = errors
        self.metrics[f"{target}.invariant_violations_{phase}"] = load["invariant_violations"]

    def add_setup(self, target: str, key: str, what: str, n: int, seconds: float) -> None:
        self.add(target, what, seconds, "s", items=n, detail=f"{n / seconds:,.0f} items/s")
        self.metrics[f"{target}.{key}_s"] = seconds


def _short(text: str | None, width: int = 44) -> str | None:
    return text if text is None or len(text) <= width else text[: width - 1] + "…"


def report(results: Results) -> None:
    title = "models benchmark" + (" (--quick)" if results.quick else "")
    shown = [{**r, "detail": _short(r.get("detail"))} for r in results.rows]
    print_table(title, COLUMNS, shown)  # the JSON rows keep the whole detail
    passed = sum(ok for _, ok in results.verdicts)
    missed = [name for name, ok in results.verdicts if not ok]
    best = [
        f"{k.split('.', 1)[1]} {100 * v:.1f}%"
        for k, v in results.metrics.items()
        if k.startswith("accuracy.")
    ]
    parts = [
        "accuracy: " + ", ".join(best) if best else "no model trained",
        *(
            f"{where} predict {results.metrics[f'predict_items_per_s.{where}']:,.0f} items/s"
            for where in ("local", "ray")
            if f"predict_items_per_s.{where}" in results.metrics
        ),
        f"worker RSS {results.metrics.get('worker_peak_rss_mb', 0):,.0f} MB",
        *(
            f"{k.split('.')[0]} next p99 {v:.0f} ms during the job"
            for k, v in results.metrics.items()
            if k.endswith(".next_p99_ms_during_job")
        ),
        f"targets met {passed}/{len(results.verdicts)}"
        + (f" (missed: {'; '.join(missed)})" if missed else ""),
        *(f"FAILED: {t}" for t in results.failed),
    ]
    print_summary("models: " + " | ".join(parts))

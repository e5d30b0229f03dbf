"""Active-learning benchmark: labels needed to reach 95% of the full-label accuracy, per sampler.

Protocol (fixed before the run; the same for every strategy):

- Data: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).
  The pool is all 60,000 training images (``--quick``: 3,000 drawn at random with seed 0); the
  test set is the 10,000 test images (``--quick``: the first 1,000). Labels are revealed as
  the dataset's own (a perfect annotator), so only the choice of items differs.
- Model: ``image-hog-logreg.v1`` (HOG + resized pixels, standardised, logistic regression, its
  default parameters), created through ``labelfarm.ml.predictors.create`` - the code the train
  and predict jobs run. It is the best built-in image predictor measured here
  (bench/results/models-2026-11-30: 90.2% test accuracy on all 60,000 labels, against 88.9% for
  ``image-cnn-torch.v1`` and 84.4% for ``image-pixels-logreg.v1``) and trains in ~1 s on a few
  thousand labels. Its raw feature extraction (PNG decoding + HOG: a pure function of the
  image) is computed once per image and reused; standardisation (fitted on the labelled items)
  and the logistic regression run every round as in a train job.
- Target: 95% of the test accuracy the same model reaches trained on every pool label.
- Seeds: 5 (``--quick``: 2). Per seed, a seed set of 100 pool items drawn at random, the same
  for every strategy; the strategy's random draws come from a generator seeded by
  (seed, strategy).
- Rounds: train on the labelled items, measure the test accuracy; if it reaches the target,
  the run's figure is the number of labels so far; else the strategy picks the next batch of
  100 among the round's candidates: 10,000 unlabelled pool items drawn at random with a
  generator seeded by (seed, labels so far) - the same draw for every strategy at the same
  point - so a round predicts 10,000 items, not 60,000 (the target still comes from all
  60,000 labels; ``--quick``'s smaller pool is used whole). A run stops at 5,000 labels
  (``--quick``: 1,000) without reaching the target: its figure is then that cap (censored;
  the "reached" column counts the runs that did reach it). ``confusion_pair`` serves a
  correction round (one class pair), not overall accuracy: its cap is 2,000 labels
  (``--quick``: 500), to bound the time.
- Strategies: every labelfarm sampler (``labelfarm.ml.samplers.score``, the function the score
  job calls, on the model's probabilities of the candidates; the top 100 by score form
  the batch; ``margin_diversity`` also gets the model's embeddings of the candidates and the
  labelled items; ``confusion_pair`` targets (T-shirt/top, shirt), the pair Fashion-MNIST
  models confuse most; ``mix`` uses its default exploration share) - which include the
  baselines ``random`` and ``margin`` - and scikit-activeml 1.0.1's
  ``UncertaintySampling(method="margin_sampling")`` on the same model's probabilities
  (``_al_peer.py``, in its own venv ``.bench-envs/active-learning``).
- "labelfarm" is the project setting ``sampler``'s default (``db/project_settings.py``),
  read from there: ``margin``, chosen before this benchmark was first run.
- Metrics: ``labels_to_target.<strategy>`` (mean over seeds) for every sampler and
  ``skactiveml``, ``labels_to_target.labelfarm``, ``labels_vs_random.labelfarm`` (ratio),
  ``full_accuracy``, ``target_accuracy``. Targets: labelfarm <= 50% of random's labels, and
  no more than scikit-activeml's.

    python bench/active_learning.py --quick
    python bench/active_learning.py            # full run, 1 thread, saved to bench/results/
    python bench/active_learning.py --strategies margin,random --seeds 2 --json out.json
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread: the benchmark shares 2 cores with other work
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:  # bench/queue.py shadows queue
    sys.path.append(sys.path.pop(0))

import dataclasses  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from _al_loop import (  # noqa: E402
    PEER,
    PREDICTOR,
    Peer,
    Plan,
    Run,
    full_accuracy,
    label_cap,
    load_pool,
    run,
    strategies_of,
)
from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    print_report,
    warn_if_busy,
    write_json,
)
from labelfarm.db.project_settings import ProjectSettings  # noqa: E402

BENCH = "active-learning"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-envs" / "active-learning"
PEER_PACKAGE = "scikit-activeml==1.0.1"
FULL = Plan(pool=60_000, test=10_000, seeds=5, max_labels=5_000, pair_max_labels=2_000)
QUICK = Plan(pool=3_000, test=1_000, seeds=2, max_labels=1_000, pair_max_labels=500)
console = Console(stderr=True)


def default_sampler() -> str:
    """The project setting ``sampler``'s default: what a new project uses."""
    found = {f.name: f.default for f in dataclasses.fields(ProjectSettings)}
    return str(found["sampler"])


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        console.print(f"creating {VENV} with {PEER_PACKAGE} (once)…")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER_PACKAGE], check=True)
    return python


def parse_args(argv: list[str] | None = None) -> Any:
    parser = make_parser(__doc__.splitlines()[0] if __doc__ else BENCH)
    parser.add_argument("--strategies", help="comma-separated (default: every sampler + peer)")
    parser.add_argument("--seeds", type=int, help="number of seeds (5 full, 2 quick)")
    parser.add_argument("--pool", type=int, help="pool size (60,000 full, 5,000 quick)")
    parser.add_argument("--max-labels", type=int, help="label cap of a run")
    return parser.parse_args(argv)


def summarise(strategy: str, runs: list[Run], plan: Plan) -> dict[str, Any]:
    cap = label_cap(strategy, plan)
    labels = np.array([r.reached if r.reached is not None else cap for r in runs])
    picks = [s for r in runs for s in r.pick_seconds]
    return {
        "strategy": strategy,
        "labels": float(labels.mean()),
        "std": float(labels.std()),
        "per_seed": " ".join(
            f"{int(v)}" if r.reached else f"≥{int(v)}" for r, v in zip(runs, labels, strict=True)
        ),
        "reached": f"{sum(r.reached is not None for r in runs)}/{len(runs)}",
        "pick_ms": 1000 * float(np.mean(picks)) if picks else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    plan = dataclasses.replace(
        plan,
        seeds=args.seeds or plan.seeds,
        pool=args.pool or plan.pool,
        max_labels=args.max_labels or plan.max_labels,
    )
    strategies = strategies_of(args.strategies.split(",") if args.strategies else None)
    chosen = default_sampler()
    warn_if_busy(console)
    machine = machine_info()
    t_start = time.perf_counter()
    pool = load_pool(plan)
    full = full_accuracy(pool)
    target = plan.share * full
    console.log(f"{PREDICTOR}: {full:.4f} with all {plan.pool:,} labels; target {target:.4f}")
    peer = Peer(ensure_venv(), Path(__file__).resolve().parent / "_al_peer.py")
    runs: dict[str, list[Run]] = {s: [] for s in strategies}
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    try:
        for seed in range(plan.seeds):
            for strategy in strategies:
                t0 = time.perf_counter()
                r = run(strategy, seed, pool, plan, target, peer if strategy == PEER else None)
                runs[strategy].append(r)
                console.log(
                    f"seed {seed} {strategy}: "
                    f"{r.reached or f'>={label_cap(strategy, plan)}'} labels "
                    f"({time.perf_counter() - t0:.1f} s)"
                )
            found = Found(plan, runs, chosen, full, target, time.perf_counter() - t_start)
            if path and seed + 1 < plan.seeds:  # a partial result survives an interrupted run
                save(path, found, machine, bool(args.quick))
    finally:
        peer.close()
    print_report(found.title(), COLUMNS, found.rows(), found.verdict())
    if path:
        save(path, found, machine, bool(args.quick))
        console.print(f"results written to {path}")


COLUMNS = [
    ("strategy", "strategy"),
    ("labels", "labels to target (mean)"),
    ("std", "std"),
    ("per_seed", "per seed"),
    ("reached", "reached"),
    ("vs_random", "× random"),
    ("pick_ms", "pick ms/batch"),
    ("default", ""),
]


@dataclasses.dataclass
class Found:
    """The runs so far and what they say."""

    plan: Plan
    runs: dict[str, list[Run]]
    chosen: str  # the labelfarm default sampler
    full: float
    target: float
    seconds: float

    def rows(self) -> list[dict[str, Any]]:
        rows = [summarise(s, runs, self.plan) for s, runs in self.runs.items() if runs]
        random_labels = next((r["labels"] for r in rows if r["strategy"] == "random"), np.nan)
        for row in rows:
            row["vs_random"] = row["labels"] / random_labels
            row["default"] = "labelfarm default" if row["strategy"] == self.chosen else ""
        return rows

    def metrics(self) -> dict[str, float | int]:
        by = {r["strategy"]: r for r in self.rows()}
        metrics: dict[str, float | int] = {
            f"labels_to_target.{s}": r["labels"] for s, r in by.items()
        }
        if self.chosen in by:
            metrics["labels_to_target.labelfarm"] = by[self.chosen]["labels"]
            if "random" in by:
                metrics["labels_vs_random.labelfarm"] = by[self.chosen]["vs_random"]
        seeds_done = min(len(r) for r in self.runs.values())
        metrics.update(full_accuracy=self.full, target_accuracy=self.target, seconds=self.seconds)
        metrics.update(pool=self.plan.pool, test=self.plan.test, seeds=seeds_done)
        return metrics

    def verdict(self) -> str:
        m = self.metrics()
        if "labels_to_target.labelfarm" not in m or "labels_vs_random.labelfarm" not in m:
            return "labelfarm default or random not run"
        lf, ratio = m["labels_to_target.labelfarm"], m["labels_vs_random.labelfarm"]
        peer = m.get(f"labels_to_target.{PEER}", np.nan)
        return (
            f"labelfarm ({self.chosen}) needs {lf:,.0f} labels = {ratio:.0%} of random's "
            f"{m['labels_to_target.random']:,.0f} ({'pass' if ratio <= 0.5 else 'FAIL'} <= 50%); "
            f"scikit-activeml {peer:,.0f} ({'pass' if lf <= peer else 'FAIL'} <= peer); "
            f"{self.seconds / 60:.1f} min"
        )

    def title(self) -> str:
        p = self.plan
        return (
            f"Labels to reach {p.share:.0%} of {self.full:.2%} (= {self.target:.2%}) test "
            f"accuracy, {PREDICTOR}, pool {p.pool:,}, test {p.test:,}, {p.seeds} seeds, batch "
            f"{p.batch}, seed set {p.seed_labels}"
        )


def save(path: Path, found: Found, machine: dict[str, Any], quick: bool) -> None:
    detail = [
        {"strategy": r.strategy, "seed": r.seed, "reached": r.reached, "curve": r.curve}
        for runs in found.runs.values()
        for r in runs
    ]
    write_json(Path(path), BENCH, quick, machine, found.metrics(), [*found.rows(), *detail])


if __name__ == "__main__":
    main()

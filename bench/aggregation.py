"""Aggregation benchmark: how right are the final labels, per human label spent?

Fashion-MNIST items (``labelfarm.sample_data.load_fashion_mnist``) are labelled by a
simulated annotator pool (noise model in ``_crowd.py``: reliable annotators, annotators who
confuse look-alike tops and shoes, one biased towards "shirt", one spammer, newcomers with
little work) through the real service API, in process (``labelfarm.client.AppTransport``):
each simulated annotator calls ``next`` and ``submit`` like a person at the annotate page.

For each fixed overlap k in 1, 2, 3, 5 a project with ``overlap = k`` is labelled, refitted
(``POST …/quality/refit``) and exported; then, on exactly those exported labels, side by
side:

- ``majority``: plurality vote (``labelfarm.ml.majority_vote``, ties broken at random);
- ``labelfarm``: the labels in the export (Dawid-Skene with priors, ``services.aggregation``);
- ``crowdkit_ds``, ``crowdkit_glad``: crowd-kit's DawidSkene and GLAD;
- ``crowdlab``: cleanlab's multi-annotator CROWDLAB (with a pixel classifier's
  cross-validated probabilities, as CROWDLAB needs a model).

The peers run in a subprocess of their own virtual environment, ``.bench-envs/aggregation``
(created here on first use: ``pip install crowd-kit cleanlab``), never labelfarm's.

Adaptive overlap: an item gets one more label while its label confidence is below a target,
between ``--min-labels`` and ``--max-labels``. When the service's submit path decides this
itself (``services/tasks/adaptive.py`` calls ``item_label``), a project with ``overlap`` =
min, ``max_overlap`` and ``target_confidence`` is labelled through the API; until then the
policy is simulated on the k=5 run's labels in arrival order with ``ml.needs_more_labels``
and ``services.aggregation.item_label`` (refitting the models between rounds), which is what
the service does at submit time.

Real crowds (``_real_crowd.py``): every ``*.standardized.tsv`` of ``--crowd`` (default
``../shared/fixtures/crowd/``: Snow et al. 2008's rte, temp, wsd, with expert gold): accuracy
with all labels and with 3 labels per item (the mean of 20 random draws of 3 labels per item)
for labelfarm's Dawid-Skene, crowd-kit's DawidSkene and majority vote, and the expected
calibration error (10 equal-mass bins) of labelfarm's item confidence, raw and calibrated
(``ml.calibration``: fitted on one half of the gold, scored on the other).

Metrics: ``accuracy.<method>.k<k>``, ``accuracy.labelfarm.adaptive``,
``labels_per_item.labelfarm.adaptive``, ``labels_per_item.k<k>``, ``seconds.*``;
``real.<dataset>.acc_full.<labelfarm|crowdkit_ds|majority>``, ``real.<dataset>.acc3.<...>``,
``real.<dataset>.ece`` (calibrated, all labels), ``.ece_raw``, ``.ece3``, ``.ece3_raw``,
``.balance_gap3`` (the largest gap between a class's share of the labels and of the truth).

    python bench/aggregation.py --quick
    python bench/aggregation.py --json out.json
    python bench/aggregation.py --real-only --crowd path/to/crowd/folder
"""

from __future__ import annotations

import os
import sys

# bench/queue.py would shadow the standard library's ``queue`` (imported by concurrent.futures):
# move bench/ behind the standard library; ``_common`` and friends are still found.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

import _real_crowd as real  # noqa: E402
from _aggregation_service import CLASS_INDEX, Run, Service  # noqa: E402
from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    print_report,
    print_summary,
    write_json,
)
from _crowd import N_CLASSES, pool  # noqa: E402
from labelfarm import ml  # noqa: E402
from labelfarm.sample_data import FASHION_CLASSES, load_fashion_mnist  # noqa: E402
from labelfarm.services import projects  # noqa: E402
from labelfarm.services.aggregation import item_label  # noqa: E402
from labelfarm.services.annotator_models import AnnotatorModels, FieldModel  # noqa: E402
from labelfarm.services.fitting import fit_class_model  # noqa: E402

BENCH = "aggregation"
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-envs" / "aggregation"
PEERS = ("crowdkit_ds", "crowdkit_glad", "crowdlab")
METHODS = ("majority", "labelfarm", *PEERS)
OVERLAPS = (1, 2, 3, 5)
SWEEP = (0.8, 0.9, 0.96)  # adaptive targets also reported, beside --target
console = Console(stderr=True)


def majority(run: Run, n_items: int, seed: int) -> np.ndarray:
    labels, _ = ml.majority_vote(
        run.long[:, 0],
        run.long[:, 1],
        run.long[:, 2],
        n_items=n_items,
        n_classes=N_CLASSES,
        rng_tiebreak=np.random.default_rng(seed),
    )
    return labels


# -- adaptive overlap ----------------------------------------------------------------------------
def _models(triples: list[tuple[int, int, int]]) -> AnnotatorModels:
    model = fit_class_model(tuple(FASHION_CLASSES), triples, {})
    return AnnotatorModels(0, {"label": FieldModel("label", "dawid-skene", classes=model)})


def simulate_adaptive(
    run: Run, project: Any, *, target: float, min_labels: int, max_labels: int, chunks: int = 10
) -> tuple[np.ndarray, float]:
    """Reveal each item's labels in arrival order while ``ml.needs_more_labels`` says so.

    Items arrive in ``chunks`` (in item order, as the queue hands them out); the models are
    refitted on everything revealed so far before each decision round, as the service refits
    them from the work done so far. The first items are decided with the priors only.
    """
    items = run.items
    available = {i: len(run.order[i]) for i in items}
    shown: dict[int, int] = {}
    for chunk in np.array_split(np.array(items), chunks):
        current = [int(i) for i in chunk]
        for i in current:
            shown[i] = min(available[i], min_labels)
        for _ in range(max_labels):
            models = _models(_triples(run, shown))
            conf = np.array(
                [_confidence(models, project, run.order[i][: shown[i]]) for i in current]
            )
            n = np.array([shown[i] for i in current])
            more = ml.needs_more_labels(
                conf, n, target=target, min_labels=min_labels, max_labels=max_labels
            ) & (n < np.array([available[i] for i in current]))
            if not more.any():
                break
            for i, extra in zip(current, more.tolist(), strict=True):
                shown[i] += int(extra)
    models = _models(_triples(run, shown))
    out = np.full(max(items) + 1, -1)
    for i in items:
        label = item_label(models, project, _anns(run.order[i][: shown[i]]))
        if label is not None:
            out[i] = CLASS_INDEX[label["value"]["label"]]
    return out, float(np.mean(list(shown.values())))


def _triples(run: Run, shown: dict[int, int]) -> list[tuple[int, int, int]]:
    return [(i, w, c) for i, k in shown.items() for w, c in run.order[i][:k]]


def _anns(votes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {"id": n, "user_id": w, "value": {"label": FASHION_CLASSES[c]}}
        for n, (w, c) in enumerate(votes)
    ]


def _confidence(models: AnnotatorModels, project: Any, votes: list[tuple[int, int]]) -> float:
    label = item_label(models, project, _anns(votes))
    return 0.0 if label is None else float(label["item_confidence"])


def service_adaptive() -> bool:
    """Whether the submit path decides adaptive overlap itself (the lead's hot path)."""
    source = ROOT / "src" / "labelfarm" / "services" / "tasks" / "adaptive.py"
    return "item_label" in source.read_text()


# -- peers ---------------------------------------------------------------------------------------
def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        console.print(f"creating {VENV} with crowd-kit and cleanlab (once)…")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "crowd-kit==1.4.2", "cleanlab==2.9.0"],
            check=True,
        )
    return python


def run_peers(tmp: Path, runs: dict[str, Run], images: np.ndarray, quick: bool) -> dict[str, Any]:
    python = ensure_venv()
    np.save(tmp / "x.npy", images)
    spec = {
        "n_classes": N_CLASSES,
        "glad_iter": 40 if quick else 100,
        "features": str(tmp / "x.npy"),
        "runs": {
            name: {"items": run.items, "labels": run.long.tolist()} for name, run in runs.items()
        },
    }
    (tmp / "peers-in.json").write_text(json.dumps(spec))
    script = Path(__file__).resolve().parent / "_aggregation_peers.py"
    subprocess.run(
        [str(python), str(script), str(tmp / "peers-in.json"), str(tmp / "peers-out.json")],
        check=True,
    )
    return json.loads((tmp / "peers-out.json").read_text())  # type: ignore[no-any-return]


# -- main ----------------------------------------------------------------------------------------
def accuracy(pred: Any, truth: np.ndarray, items: list[int]) -> float | None:
    if isinstance(pred, dict):  # a peer that failed: {"error": ...}
        return None
    p = np.asarray(pred) if len(pred) == len(items) else np.asarray(pred)[items]
    return float(np.mean(p == truth[items]))


def main() -> None:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, help="items per project (1,000 quick, 5,000 full)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.96, help="adaptive target confidence")
    parser.add_argument("--min-labels", type=int, default=1)
    parser.add_argument("--max-labels", type=int, default=5)
    parser.add_argument(
        "--crowd",
        type=Path,
        default=real.DEFAULT_FOLDER,
        help="folder of real crowd datasets (*.standardized.tsv, see bench/_real_crowd.py)",
    )
    parser.add_argument("--real-only", action="store_true", help="only the real crowds")
    args = parser.parse_args()
    if args.real_only:
        with tempfile.TemporaryDirectory(prefix="lf-bench-real-") as tmp_name:
            metrics, rows, summary = real.run(args.crowd, args.seed, Path(tmp_name), ensure_venv())
        print_summary(f"{BENCH}: {summary}")
        if args.json:  # a partial run never lands in bench/results by default
            finish(args, metrics, rows)
        return
    n_items = args.items or (1000 if args.quick else 5000)
    data = load_fashion_mnist()
    subset = np.sort(np.random.default_rng(args.seed).permutation(len(data.labels))[:n_items])
    truth = data.labels[subset]
    position = {int(i): n for n, i in enumerate(subset)}
    crowd = pool(args.quick)
    runs: dict[str, Run] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lf-bench-agg-") as tmp_name:
        tmp = Path(tmp_name)
        service = Service(tmp, crowd)
        project5 = None
        for k in OVERLAPS:
            t0 = time.perf_counter()
            pid = service.project(f"k{k}", subset, overlap=k)
            service.label(pid, data.labels, args.seed)
            service.refit(pid)
            runs[f"k{k}"] = Run(service.export(pid), position, service)
            seconds[f"label_k{k}"] = time.perf_counter() - t0
            console.print(
                f"k={k}: {len(runs[f'k{k}'].long):,} labels in {seconds[f'label_k{k}']:.1f} s"
            )
            if k == 5:
                project5 = service.app.state.ctx.db.run(projects.load_project, pid)
        t0 = time.perf_counter()
        adaptive_path = "simulated"
        if service_adaptive():
            try:
                pid = service.project(
                    "adaptive",
                    subset,
                    overlap=args.min_labels,
                )
                service.manager.update_project(
                    pid, max_overlap=args.max_labels, target_confidence=args.target
                )
                service.label(pid, data.labels, args.seed, refit_every=5)
                service.refit(pid)
                run = Run(service.export(pid), position, service)
                adaptive_pred, adaptive_lpi = run.labelfarm, run.labels_per_item
                adaptive_path = "service"
            except Exception as exc:  # the hot path may be half-landed: fall back, say so
                console.print(f"adaptive through the service failed ({exc}); simulating")
        if adaptive_path == "simulated":
            adaptive_pred, adaptive_lpi = simulate_adaptive(
                runs["k5"],
                project5,
                target=args.target,
                min_labels=args.min_labels,
                max_labels=args.max_labels,
            )
        sweep = {  # the cost / accuracy frontier of the policy, on the same labels
            t: simulate_adaptive(
                runs["k5"],
                project5,
                target=t,
                min_labels=args.min_labels,
                max_labels=args.max_labels,
            )
            for t in SWEEP
            if t != args.target
        }
        seconds["adaptive"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        peers = run_peers(tmp, runs, data.images[subset], args.quick)
        seconds["peers"] = time.perf_counter() - t0
        service.close()
        real_metrics, real_rows, real_summary = real.run(args.crowd, args.seed, tmp, ensure_venv())

    metrics: dict[str, float | int] = {}
    rows = []
    for k in OVERLAPS:
        run = runs[f"k{k}"]
        preds: dict[str, Any] = {
            "majority": majority(run, n_items, args.seed),
            "labelfarm": run.labelfarm,
            **{m: peers[f"k{k}"][m] for m in PEERS},
        }
        row: dict[str, Any] = {"overlap": f"k={k}", "labels_per_item": run.labels_per_item}
        for method, pred in preds.items():
            acc = accuracy(pred, truth, run.items)
            row[method] = acc
            if acc is not None:
                metrics[f"accuracy.{method}.k{k}"] = round(acc, 6)
            else:
                row[f"{method}_error"] = peers[f"k{k}"][method]["error"]
        metrics[f"labels_per_item.k{k}"] = round(run.labels_per_item, 4)
        rows.append(row)
    adaptive_acc = float(np.mean(adaptive_pred[runs["k5"].items] == truth[runs["k5"].items]))
    metrics["accuracy.labelfarm.adaptive"] = round(adaptive_acc, 6)
    metrics["labels_per_item.labelfarm.adaptive"] = round(adaptive_lpi, 4)
    for name, value in seconds.items():
        metrics[f"seconds.{name}"] = round(value, 2)
    for k in OVERLAPS:
        for m in PEERS:
            metrics[f"seconds.{m}.k{k}"] = peers[f"k{k}"][f"{m}_seconds"]
    rows.append(
        {
            "overlap": f"adaptive ({adaptive_path}; target {args.target}, "
            f"{args.min_labels}-{args.max_labels})",
            "labels_per_item": adaptive_lpi,
            "labelfarm": adaptive_acc,
        }
    )
    for t, (pred, lpi) in sorted(sweep.items()):
        acc = float(np.mean(pred[runs["k5"].items] == truth[runs["k5"].items]))
        metrics[f"accuracy.labelfarm.adaptive_t{t:g}"] = round(acc, 6)
        metrics[f"labels_per_item.labelfarm.adaptive_t{t:g}"] = round(lpi, 4)
        rows.append(
            {
                "overlap": f"adaptive (simulated; target {t:g}, "
                f"{args.min_labels}-{args.max_labels})",
                "labels_per_item": lpi,
                "labelfarm": acc,
            }
        )
    ds3 = metrics.get("accuracy.crowdkit_ds.k3", 0.0)
    lf3 = metrics["accuracy.labelfarm.k3"]
    beats = all(
        metrics[f"accuracy.labelfarm.k{k}"] >= metrics.get(f"accuracy.crowdkit_ds.k{k}", 0.0)
        for k in OVERLAPS
    )
    share = adaptive_lpi / runs["k3"].labels_per_item
    summary = (
        f"{BENCH}: {n_items:,} Fashion-MNIST items, {len(crowd)} simulated annotators; "
        f"labelfarm vs crowd-kit DS at k=3: {lf3:.3f} vs {ds3:.3f} "
        f"(labelfarm >= DS at every k: {'yes' if beats else 'no'}); adaptive: {adaptive_acc:.3f} "
        f"with {adaptive_lpi:.2f} labels/item = {share:.0%} of k=3's labels "
        f"(target: >= {max(ds3, lf3):.3f} with <= 60%)"
    )
    columns = [
        "overlap",
        ("labels_per_item", "labels/item"),
        *[(m, m) for m in METHODS],
    ]
    print_report(
        f"{BENCH}: accuracy of the final labels vs the true classes",
        columns,
        rows,
        f"{summary}; {real_summary}",
    )
    finish(args, {**metrics, **real_metrics}, rows + real_rows)


def finish(args: Any, metrics: dict[str, Any], rows: list[Any]) -> None:
    """Write the JSON (``--json``, or the default results path of a full run)."""
    machine = machine_info()
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, metrics, rows)
        console.print(f"wrote {path}")


if __name__ == "__main__":
    main()

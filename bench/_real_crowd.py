"""Real crowdsourced labels with ground truth, for ``bench/aggregation.py``.

A crowd folder holds ``*.standardized.tsv`` files (directly or one level down, as
``../shared/fixtures/crowd/snow2008/``): tab-separated, a header row with the columns
``!amt_worker_ids`` (the annotator), ``orig_id`` (the item), ``response`` (the label) and
``gold`` (the true label); other columns are ignored. Items, annotators and labels are
mapped to dense indexes (labels in sorted order of their text, the gold labels included).

:func:`subsample` keeps ``k`` random labels per item (all of them when an item has fewer).
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("!amt_worker_ids", "orig_id", "response", "gold")
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "crowd"


@dataclass(frozen=True)
class CrowdDataset:
    """One dataset in long format: ``long`` is ``(n_labels, 3)`` rows (item, annotator,
    label); ``truth`` the true class per item; ``classes`` the label texts."""

    name: str
    long: np.ndarray
    truth: np.ndarray
    classes: tuple[str, ...]
    n_annotators: int

    @property
    def n_items(self) -> int:
        return len(self.truth)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def dataset_files(folder: Path) -> list[Path]:
    """The ``*.standardized.tsv`` files of ``folder`` and its direct subfolders, sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"crowd folder {folder} does not exist")
    files = sorted(folder.glob("*.standardized.tsv")) + sorted(folder.glob("*/*.standardized.tsv"))
    if not files:
        raise FileNotFoundError(f"no *.standardized.tsv file in {folder} or its subfolders")
    return files


def read_dataset(path: Path) -> CrowdDataset:
    """Read one standardized TSV file (see the module docstring); a clear error naming the
    file and line on a missing column or an item with two gold labels."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = [(r["orig_id"], r["!amt_worker_ids"], r["response"], r["gold"]) for r in reader]
    classes = tuple(sorted({r[2] for r in rows} | {r[3] for r in rows}))
    cls = {c: k for k, c in enumerate(classes)}
    items = {i: n for n, i in enumerate(dict.fromkeys(r[0] for r in rows))}
    workers = {w: n for n, w in enumerate(dict.fromkeys(r[1] for r in rows))}
    truth = np.full(len(items), -1, dtype=np.int64)
    for line, (item, _, _, gold) in enumerate(rows, start=2):
        k = cls[gold]
        if truth[items[item]] not in (-1, k):
            raise ValueError(f"{path}:{line}: item {item} has two gold labels")
        truth[items[item]] = k
    long = np.array([(items[i], workers[w], cls[lb]) for i, w, lb, _ in rows], dtype=np.int64)
    name = path.name.removesuffix(".standardized.tsv")
    return CrowdDataset(name, long.reshape(-1, 3), truth, classes, len(workers))


def read_folder(folder: Path) -> list[CrowdDataset]:
    return [read_dataset(p) for p in dataset_files(folder)]


def subsample(long: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` labels per item drawn at random without replacement (rows of ``long``)."""
    order = rng.permutation(len(long))
    shuffled = long[order]
    stable = np.argsort(shuffled[:, 0], kind="stable")
    grouped = shuffled[stable]
    starts = np.searchsorted(grouped[:, 0], grouped[:, 0], side="left")
    rank = np.arange(len(grouped)) - starts
    return grouped[rank < k]


# -- the evaluation --------------------------------------------------------------------------
SUBSAMPLES = 20  # random draws of 3 labels per item, averaged
PER_ITEM = 3
CONFIDENT = 0.96  # "rated this confident": an adaptive target's usual value
N_BINS = 10


@dataclass
class RealResult:
    """The figures of one dataset (accuracies in [0, 1]; ECE with 10 equal-mass bins)."""

    name: str
    n_items: int
    n_annotators: int
    n_labels: int
    acc_full: dict[str, float]
    acc3: dict[str, float]
    ece_raw: float  # labelfarm's confidence as it comes out of Dawid-Skene, all labels
    ece: float  # calibrated on one half of the gold, scored on the other, all labels
    ece3_raw: float
    ece3: float
    balance_gap3: float  # largest |share of a class - its true share| at 3 labels
    confident_precision3: float  # right among items rated >= CONFIDENT (raw), 3 labels


def labelfarm_fit(
    d: CrowdDataset, long: np.ndarray, *, former: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """labelfarm's labels and confidence: Dawid-Skene as the service fits it (``former``:
    as it did before the prior was fitted: fixed prior, no balance damping or check)."""
    options: dict[str, Any] = (
        {"fit_prior": False, "balance_damping": 0.0, "balance_tolerance": None} if former else {}
    )
    from labelfarm import ml
    from labelfarm.services.annotator_models import PRIOR_ACCURACY, PRIOR_STRENGTH

    result = ml.dawid_skene(
        long[:, 0],
        long[:, 1],
        long[:, 2],
        n_items=d.n_items,
        n_classes=d.n_classes,
        n_annotators=d.n_annotators,
        prior_strength=PRIOR_STRENGTH,
        prior_accuracy=PRIOR_ACCURACY,
        **options,
    )
    return result.labels, result.confidence


def _ece_pair(
    d: CrowdDataset, labels: np.ndarray, conf: np.ndarray, seed: int
) -> tuple[float, float]:
    """(raw ECE, ECE after a calibrator fitted on one half of the gold, scored on the other)."""
    from labelfarm.ml import calibration

    ok = labels == d.truth
    calibrated = calibration.cross_fitted(
        conf, ok, n_classes=d.n_classes, rng=np.random.default_rng(seed)
    )
    return (
        calibration.expected_calibration_error(conf, ok, n_bins=N_BINS),
        calibration.expected_calibration_error(calibrated, ok, n_bins=N_BINS),
    )


def draws(d: CrowdDataset, seed: int, n: int = SUBSAMPLES) -> list[np.ndarray]:
    return [subsample(d.long, PER_ITEM, np.random.default_rng([seed, s])) for s in range(n)]


def peer_runs(datasets: list[CrowdDataset], seed: int) -> dict[str, Any]:
    """The peers' input: every dataset's full labels and its subsamples, one run each."""
    runs: dict[str, Any] = {}
    for d in datasets:
        items = list(range(d.n_items))
        runs[f"{d.name}/full"] = {"items": items, "labels": d.long.tolist()}
        for s, sub in enumerate(draws(d, seed)):
            runs[f"{d.name}/s{s}"] = {"items": items, "labels": sub.tolist()}
    return runs


def _accuracy(pred: Any, truth: np.ndarray) -> float:
    if isinstance(pred, dict):  # a failed peer: {"error": ...}
        return float("nan")
    return float(np.mean(np.asarray(pred) == truth))


def evaluate(d: CrowdDataset, peers: dict[str, Any], seed: int) -> RealResult:
    """labelfarm against crowd-kit DS (``peers``: the peers' output) on one dataset."""
    from labelfarm import ml

    labels, conf = labelfarm_fit(d, d.long)
    ece_raw, ece = _ece_pair(d, labels, conf, seed)
    acc3: dict[str, list[float]] = {
        "labelfarm": [],
        "crowdkit_ds": [],
        "majority": [],
        "labelfarm_former": [],
    }
    eces: list[tuple[float, float]] = []
    gaps, confident = [], []
    truth_share = np.bincount(d.truth, minlength=d.n_classes) / d.n_items
    for s, sub in enumerate(draws(d, seed)):
        lab3, conf3 = labelfarm_fit(d, sub)
        acc3["labelfarm"].append(float(np.mean(lab3 == d.truth)))
        former = labelfarm_fit(d, sub, former=True)[0]
        acc3["labelfarm_former"].append(float(np.mean(former == d.truth)))
        sure = conf3 >= CONFIDENT
        confident.append(float(np.mean(lab3[sure] == d.truth[sure])) if sure.any() else 1.0)
        acc3["crowdkit_ds"].append(_accuracy(peers[f"{d.name}/s{s}"]["crowdkit_ds"], d.truth))
        mv, _ = ml.majority_vote(
            sub[:, 0],
            sub[:, 1],
            sub[:, 2],
            n_items=d.n_items,
            n_classes=d.n_classes,
            rng_tiebreak=np.random.default_rng([seed, s]),
        )
        acc3["majority"].append(float(np.mean(mv == d.truth)))
        eces.append(_ece_pair(d, lab3, conf3, seed + s))
        share = np.bincount(lab3, minlength=d.n_classes) / d.n_items
        gaps.append(float(np.abs(share - truth_share).max()))
    full_mv, _ = ml.majority_vote(
        d.long[:, 0],
        d.long[:, 1],
        d.long[:, 2],
        n_items=d.n_items,
        n_classes=d.n_classes,
        rng_tiebreak=np.random.default_rng(seed),
    )
    return RealResult(
        d.name,
        d.n_items,
        d.n_annotators,
        len(d.long),
        acc_full={
            "labelfarm": float(np.mean(labels == d.truth)),
            "crowdkit_ds": _accuracy(peers[f"{d.name}/full"]["crowdkit_ds"], d.truth),
            "majority": float(np.mean(full_mv == d.truth)),
        },
        acc3={m: float(np.mean(v)) for m, v in acc3.items()},
        ece_raw=ece_raw,
        ece=ece,
        ece3_raw=float(np.mean([e[0] for e in eces])),
        ece3=float(np.mean([e[1] for e in eces])),
        balance_gap3=float(np.mean(gaps)),
        confident_precision3=float(np.mean(confident)),
    )


def metrics_and_rows(results: list[RealResult]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """``real.<dataset>.*`` metrics and one table row per dataset."""
    metrics: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    for r in results:
        p = f"real.{r.name}"
        for m, v in r.acc_full.items():
            metrics[f"{p}.acc_full.{m}"] = round(v, 6)
        for m, v in r.acc3.items():
            metrics[f"{p}.acc3.{m}"] = round(v, 6)
        metrics[f"{p}.ece"] = round(r.ece, 6)
        metrics[f"{p}.ece_raw"] = round(r.ece_raw, 6)
        metrics[f"{p}.ece3"] = round(r.ece3, 6)
        metrics[f"{p}.ece3_raw"] = round(r.ece3_raw, 6)
        metrics[f"{p}.balance_gap3"] = round(r.balance_gap3, 6)
        metrics[f"{p}.confident_precision3"] = round(r.confident_precision3, 6)
        rows.append(
            {
                "dataset": f"{r.name} ({r.n_items} items, {r.n_annotators} annotators)",
                "full_labelfarm": r.acc_full["labelfarm"],
                "full_crowdkit_ds": r.acc_full["crowdkit_ds"],
                "acc3_labelfarm": r.acc3["labelfarm"],
                "acc3_crowdkit_ds": r.acc3["crowdkit_ds"],
                "acc3_majority": r.acc3["majority"],
                "acc3_former": r.acc3["labelfarm_former"],
                "confident3": r.confident_precision3,
                "ece_raw": r.ece_raw,
                "ece": r.ece,
                "ece3": r.ece3,
                "balance_gap3": r.balance_gap3,
            }
        )
    finite = {k: v for k, v in metrics.items() if np.isfinite(v)}  # a failed peer: left out
    rows = [
        {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in row.items()}
        for row in rows
    ]
    return finite, rows


TABLE_COLUMNS = [
    "dataset",
    ("full_labelfarm", "all: labelfarm"),
    ("full_crowdkit_ds", "all: crowd-kit DS"),
    ("acc3_labelfarm", "3/item: labelfarm"),
    ("acc3_crowdkit_ds", "3/item: crowd-kit DS"),
    ("acc3_majority", "3/item: majority"),
    ("acc3_former", "3/item: labelfarm, fixed prior (before)"),
    ("confident3", "3/item: right when >= 0.96"),
    ("ece_raw", "ECE raw"),
    ("ece", "ECE calibrated"),
    ("ece3", "ECE 3/item"),
    ("balance_gap3", "balance gap 3/item"),
]


def summary(results: list[RealResult]) -> str:
    beats = all(r.acc3["labelfarm"] >= r.acc3["crowdkit_ds"] for r in results)
    eces = ", ".join(f"{r.name} {r.ece:.3f}" for r in results)
    gaps = ", ".join(
        f"{r.name} {r.acc3['labelfarm'] - r.acc3['crowdkit_ds']:+.3f}" for r in results
    )
    return (
        f"real crowds: labelfarm - crowd-kit DS at 3 labels/item: {gaps} "
        f"(>= on every dataset: {'yes' if beats else 'no'}); ECE calibrated: {eces} "
        "(target <= 0.05 on rte, temp)"
    )


def run(
    folder: Path, seed: int, tmp: Path, python: Path
) -> tuple[dict[str, float], list[Any], str]:
    """labelfarm vs crowd-kit DS (run by ``python``, the peers' environment) on the real
    crowd datasets of ``folder``: the metrics, the table's rows (printed here) and the
    summary's part."""
    from _common import print_table

    t0 = time.perf_counter()
    datasets = read_folder(folder)
    spec = {"n_classes": 0, "methods": ["crowdkit_ds"], "runs": peer_runs(datasets, seed)}
    (tmp / "real-in.json").write_text(json.dumps(spec))
    script = Path(__file__).resolve().parent / "_aggregation_peers.py"
    subprocess.run(
        [str(python), str(script), str(tmp / "real-in.json"), str(tmp / "real-out.json")],
        check=True,
    )
    peers = json.loads((tmp / "real-out.json").read_text())
    results = [evaluate(d, peers, seed) for d in datasets]
    metrics, rows = metrics_and_rows(results)
    metrics["seconds.real"] = round(time.perf_counter() - t0, 2)
    print_table(
        f"aggregation: real crowds ({folder}); accuracy vs gold, ECE of item confidence "
        f"(10 equal-mass bins; 3/item = mean of {SUBSAMPLES} draws)",
        TABLE_COLUMNS,
        rows,
    )
    return metrics, [{"part": "real", **r} for r in rows], summary(results)

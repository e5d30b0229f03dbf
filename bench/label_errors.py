"""Label-error benchmark: does labelfarm find the wrong labels, and more of them than cleanlab?

Fashion-MNIST training images (``--n``, default 10,000; 1,000 with ``--quick``) get
injected label noise (``_label_errors_data.py``): 20% and 40% of wrong labels, ``uniform``
(any other class) or ``similar`` (a look-alike: tops among tops, shoes among shoes, ...),
either as **single** labels or from a **crowd** of 3 simulated annotators per item (a pool
of 12 whose mean accuracy is 1 - rate, the item's label their plurality vote). The errors to
find are the items whose label differs from the true class.

For each of the 8 settings, the out-of-sample probabilities are computed ONCE, by the code
the ``label_errors`` job runs (``services.label_errors_folds.out_of_sample_proba``: 5 folds
dealt by a stable hash, the image predictor ``image-pixels-logreg.v1`` trained on the other
folds); then, on exactly those probabilities, side by side:

- ``labelfarm``: the job's ranking (``services.label_errors_rank.detect``): single labels by
  confident learning's noise channel; crowd labels with the annotators' Dawid-Skene model
  fitted as the service fits it (``services.fitting.fit_class_model``);
- ``peer``: cleanlab 2.9 in its own environment (``.bench-envs/label-errors``, created here
  on first use): ``cleanlab.filter.find_label_issues`` for single labels, CROWDLAB's
  ``get_label_quality_multiannotator`` for the crowd (flagged: its consensus differs from the
  label), given the same probabilities as ``.npy`` files (``_label_errors_peer.py``).

Metrics per method, setting and mode: ``precision``, ``recall``, ``f1`` (of the flagged items
against the true errors) and ``auroc`` (of the scores), e.g. ``f1.labelfarm.similar20.crowd``.
Target: labelfarm's F1 >= the peer's in every setting.

    python bench/label_errors.py --quick
    python bench/label_errors.py --json bench/results/label-errors-DATE-MACHINE.json
"""

from __future__ import annotations

import os
import sys

# bench/queue.py would shadow the standard library's ``queue``: move bench/ behind it.
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

from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    print_report,
    wide_console,
    write_json,
)
from _label_errors_data import (  # noqa: E402
    N_CLASSES,
    Images,
    crowd_labels,
    load_images,
    single_labels,
)
from labelfarm.ml.predictors.base import FieldSpec  # noqa: E402
from labelfarm.services.fitting import fit_class_model  # noqa: E402
from labelfarm.services.label_errors_folds import fold_numbers, out_of_sample_proba  # noqa: E402
from labelfarm.services.label_errors_rank import Vote, detect  # noqa: E402
from labelfarm.services.models.training import AGGREGATED, Example  # noqa: E402

BENCH = "label-errors"
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-envs" / "label-errors"
PREDICTOR, FIELD, FOLDS = "image-pixels-logreg.v1", "label", 5
CLASSES = tuple(f"c{k}" for k in range(N_CLASSES))
SETTINGS = (("uniform", 0.2), ("uniform", 0.4), ("similar", 0.2), ("similar", 0.4))
MODES = ("single", "crowd")
console = wide_console()


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        console.print(f"creating {VENV} with cleanlab (once)…")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "cleanlab==2.9.0", "pandas"], check=True
        )
    return python


def run_peer(tmp: Path, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    python = ensure_venv()
    (tmp / "peer-in.json").write_text(json.dumps({"runs": runs}))
    script = Path(__file__).resolve().parent / "_label_errors_peer.py"
    subprocess.run(
        [str(python), str(script), str(tmp / "peer-in.json"), str(tmp / "peer-out.json")],
        check=True,
    )
    return json.loads((tmp / "peer-out.json").read_text())  # type: ignore[no-any-return]


def labelfarm_detect(proba: np.ndarray, labels: np.ndarray, crowd: Any) -> tuple[Any, Any]:
    """The job's ranking on the setting: examples, votes and the fitted annotator model as
    the service builds them (item ids are row numbers + 1, user ids annotator + 1)."""
    examples = [Example(i + 1, {FIELD: CLASSES[int(y)]}, AGGREGATED) for i, y in enumerate(labels)]
    votes: list[Vote] = []
    triples: list[tuple[int, int, int]] = []
    if crowd is not None:
        for i, a, k in zip(crowd.items, crowd.annotators, crowd.answers, strict=True):
            votes.append(Vote(int(i) + 1, int(a) + 1, CLASSES[int(k)]))
            triples.append((int(i) + 1, int(a) + 1, int(k)))
    model = fit_class_model(CLASSES, triples, {})
    found = detect(model, FIELD, examples, proba, votes)
    return found.is_issue, found.score


def scores(flags: np.ndarray, score: np.ndarray, wrong: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    hits = float(np.sum(flags & wrong))
    precision = hits / max(float(flags.sum()), 1.0)
    recall = hits / max(float(wrong.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auroc = float(roc_auc_score(wrong, score)) if 0 < wrong.sum() < len(wrong) else 0.5
    return {"precision": precision, "recall": recall, "f1": f1, "auroc": auroc}


def prepare(images: Images, tmp: Path, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every setting's labels and out-of-sample probabilities (saved for the peer)."""
    specs = (FieldSpec(FIELD, "choice", CLASSES),)
    folds = fold_numbers([it.id for it in images.items], FOLDS, salt="bench")
    runs, peer_runs = {}, {}
    for kind, rate in SETTINGS:
        for mode in MODES:
            name = f"{kind}{round(100 * rate)}.{mode}"
            crowd = crowd_labels(images.truth, rate, kind, seed) if mode == "crowd" else None
            labels = crowd.labels if crowd else single_labels(images.truth, rate, kind, seed)
            started = time.perf_counter()
            proba = out_of_sample_proba(
                PREDICTOR,
                specs,
                {},
                images.items,
                {FIELD: [CLASSES[int(y)] for y in labels]},
                folds,
            )[FIELD]
            seconds = time.perf_counter() - started
            np.save(tmp / f"{name}.proba.npy", proba)
            np.save(tmp / f"{name}.labels.npy", labels)
            peer_runs[name] = {
                "kind": mode,
                "proba": str(tmp / f"{name}.proba.npy"),
                "labels": str(tmp / f"{name}.labels.npy"),
            }
            if crowd is not None:
                np.save(tmp / f"{name}.wide.npy", crowd.wide(len(labels)))
                peer_runs[name]["wide"] = str(tmp / f"{name}.wide.npy")
            runs[name] = {"proba": proba, "labels": labels, "crowd": crowd, "cv_s": seconds}
            console.log(f"{name}: probabilities in {seconds:.1f} s")
    return runs, peer_runs


def measure(
    images: Images, runs: dict[str, Any], peer: dict[str, Any]
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    metrics: dict[str, float] = {}
    rows = []
    for name, run in runs.items():
        setting, mode = name.split(".")
        wrong = run["labels"] != images.truth
        started = time.perf_counter()
        flags, score = labelfarm_detect(run["proba"], run["labels"], run["crowd"])
        ours = scores(np.asarray(flags, bool), np.asarray(score), wrong)
        ours_s = time.perf_counter() - started
        theirs = peer.get(name, {})
        if "error" in theirs or not theirs:
            console.print(f"[red]peer failed on {name}: {theirs.get('error')}[/red]")
            other = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "auroc": 0.0}
        else:
            other = scores(np.asarray(theirs["flags"], bool), np.asarray(theirs["scores"]), wrong)
        for method, got in (("labelfarm", ours), ("peer", other)):
            for metric, value in got.items():
                metrics[f"{metric}.{method}.{setting}.{mode}"] = round(value, 4)
        rows.append(
            {
                "setting": setting,
                "mode": mode,
                "errors": int(wrong.sum()),
                "f1_labelfarm": round(ours["f1"], 4),
                "f1_peer": round(other["f1"], 4),
                "p_labelfarm": round(ours["precision"], 4),
                "r_labelfarm": round(ours["recall"], 4),
                "p_peer": round(other["precision"], 4),
                "r_peer": round(other["recall"], 4),
                "auroc_labelfarm": round(ours["auroc"], 4),
                "auroc_peer": round(other["auroc"], 4),
                "cv_s": round(run["cv_s"], 2),
                "labelfarm_s": round(ours_s, 3),
                "peer_s": theirs.get("seconds"),
            }
        )
    return metrics, rows


def main() -> None:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help="images (default 10000; 1000 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.n or (1000 if args.quick else 10000)
    started = time.perf_counter()
    images = load_images(n)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        runs, peer_runs = prepare(images, tmp, args.seed)
        peer = run_peer(tmp, peer_runs)
    metrics, rows = measure(images, runs, peer)
    wins = sum(r["f1_labelfarm"] >= r["f1_peer"] for r in rows)
    metrics["settings_f1_at_least_peer"] = wins
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    summary = (
        f"labelfarm F1 >= cleanlab in {wins} of {len(rows)} settings ({n} images); mean F1 "
        f"labelfarm {np.mean([r['f1_labelfarm'] for r in rows]):.3f}, "
        f"peer {np.mean([r['f1_peer'] for r in rows]):.3f}"
    )
    columns = [(c, c.replace("_labelfarm", " lf").replace("_peer", " peer")) for c in rows[0]]
    print_report(f"{BENCH}: finding injected label errors", columns, rows, summary, console)
    machine = machine_info()
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, metrics, rows)
        console.print(f"wrote {path}")


if __name__ == "__main__":
    main()

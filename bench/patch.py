"""Correction-rounds benchmark: do two rounds on a confused pair fix it better than the same
labels spent on random items?

Protocol (fixed before the run): Fashion-MNIST (Debian ``dataset-fashion-mnist``). Two
projects of one SQLite site, identical at the start: a pool of training images in a random
order (``fifo`` ordering: the queue serves them in that random order), overlap 3, the test
images as control gold (the fixed held-out set: never trained on, never served), the
simulated annotator pool of ``bench/aggregation.py`` (``_crowd.py``: reliable annotators,
confusers of look-alike tops, one biased towards "shirt", a spammer, newcomers) labelling
through the API in process; final labels aggregated as the project does (Dawid-Skene after
a refit of the annotator models). Both label the same seed, then train version 1 (the train
job, ``image-pixels-logreg.v1``, promoted and predicted on the open items).

* **rounds**: the confusion report (``services.confusion_report``, what the learning page
  shows) names the most confused pair among shirt / T-shirt / pullover / coat; two
  correction rounds of ``--budget`` labels each are opened for it
  (``services.correction_rounds``: the score job serves the pair's confusable items and the
  items the model got wrong); each closes on its budget and trains the next version.
* **control**: the same number of labels on random items (the next ones of the random
  order), a new version trained after each ``--budget`` labels.

Every version of both projects is then evaluated again on the same held-out set (the
``evaluate`` job) and the report's numbers are read from the same services as the page.

Metrics: ``pair_error.<a>__<b>.v0`` (version 1, before any round), ``.v2`` (after two
rounds), ``.control`` (after the control's labels), for every pair of the four tops;
``target.drop``, ``target.control_drop`` (relative drops of the targeted pair's error) and
``target.ratio`` = drop / control_drop. Target: the targeted pair's error falls at least 20%
more (relative) than the control's: drop >= 1.2 x control_drop (and drop > 0).

    python bench/patch.py --quick
    python bench/patch.py --json /tmp/patch.json
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import tempfile  # noqa: E402
import time  # noqa: E402
from itertools import combinations  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from _common import (  # noqa: E402
    machine_info,
    make_parser,
    print_report,
    write_json,
)
from _crowd import TOPS, pool  # noqa: E402
from _patch_site import CLASSES, FIELD, PREDICTOR, Site, write_images  # noqa: E402
from labelfarm.services import correction_rounds  # noqa: E402
from labelfarm.services.confusion_report import confusion_report, pair_errors  # noqa: E402
from labelfarm.services.correction_rounds_errors import rounds_with_errors  # noqa: E402

BENCH = "patch"
SCHEMA: dict[str, Any] = {
    "data": {"image": "image"},
    "fields": [{"name": FIELD, "type": "choice", "options": list(CLASSES)}],
}
TOP_NAMES = [CLASSES[c] for c in TOPS]
FULL = {"pool": 4000, "test": 3000, "seed_labels": 1500, "budget": 200}
QUICK = {"pool": 1200, "test": 800, "seed_labels": 600, "budget": 100}


def train_and_promote(site: Site, project: Any) -> None:
    site.refit(project)
    site.enqueue(project, "train", {"predictor": PREDICTOR, "then": "promote_and_predict"})
    site.run_jobs()


def top_pair(site: Site, project: Any) -> tuple[str, str]:
    """The report's most confused pair of two tops."""
    report = site.db.run(confusion_report, site.load(project.id), top=100)
    for p in report["pairs"]:
        if p["a"] in TOP_NAMES and p["b"] in TOP_NAMES:
            return p["a"], p["b"]
    raise RuntimeError("the report names no confused pair of tops")


def run_rounds(site: Site, project: Any, truth: dict, plan: dict, seed: int) -> tuple:
    pair = top_pair(site, project)
    rng = np.random.default_rng(seed + 1)
    for _ in range(2):
        project = site.load(project.id)
        opened = site.db.run(
            correction_rounds.open_round, project, a=pair[0], b=pair[1],
            budget=plan["budget"], now=time.time(), actor_id=site.manager["id"],
        )  # fmt: skip
        site.run_jobs()  # the score job steers the queue to the pair

        def spent(project_id: int = project.id) -> bool:
            closed = site.db.run(correction_rounds.close_spent_rounds, project_id, now=time.time())
            return bool(closed)

        site.label(project.id, truth, plan["budget"], rng, seed, stop=spent)
        site.db.run(correction_rounds.close_spent_rounds, project.id, now=time.time())
        site.refit(site.load(project.id))
        site.run_jobs()  # train (then promote, predict, score)
        print(f"round {opened['id']} on {pair}: pinned {opened['pinned']}", file=sys.stderr)
    return pair, site.load(project.id)


def run_control(site: Site, project: Any, truth: dict, plan: dict, seed: int) -> Any:
    rng = np.random.default_rng(seed + 1)
    for _ in range(2):
        site.label(project.id, truth, plan["budget"], rng, seed)
        train_and_promote(site, site.load(project.id))
    return site.load(project.id)


def evaluate_all(site: Site, project: Any) -> None:
    from labelfarm.services.confusion_report import evaluate_all as queue_evaluations

    site.db.run(queue_evaluations, site.load(project.id), now=time.time(), actor_id=None)
    site.run_jobs()


def main() -> None:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-patch-") as tmp:
        folder = Path(tmp)
        images = folder / "images"
        order = rng.permutation(60_000)[: plan["pool"]]
        pool_file, truth = write_images(images, "train", order, gold=False)
        test_file, _ = write_images(images, "test", rng.permutation(10_000)[: plan["test"]], True)
        site = Site(folder / "site", pool(args.quick))
        try:
            arms = {}
            for arm in ("rounds", "control"):
                project = site.project(arm, SCHEMA, [(test_file, images), (pool_file, images)])
                site.label(
                    project.id,
                    truth,
                    plan["seed_labels"],
                    np.random.default_rng(args.seed),
                    args.seed,
                )
                train_and_promote(site, site.load(project.id))
                arms[arm] = project
            pair, rounds = run_rounds(site, arms["rounds"], truth, plan, args.seed)
            control = run_control(site, arms["control"], truth, plan, args.seed)
            for p in (rounds, control):
                evaluate_all(site, p)
            listed = site.db.run(rounds_with_errors, site.load(rounds.id))
            metrics, rows = measure(site, rounds, control, pair)
        finally:
            site.close()
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    report(args, plan, pair, metrics, rows, listed)


def measure(site: Site, rounds: Any, control: Any, pair: tuple[str, str]) -> tuple[dict, list]:
    metrics: dict[str, float] = {}
    rows = []
    for a, b in combinations(TOP_NAMES, 2):
        r = site.db.run(pair_errors, site.load(rounds.id), FIELD, a, b)
        c = site.db.run(pair_errors, site.load(control.id), FIELD, a, b)
        key = f"pair_error.{a}__{b}"
        values = {"v0": r.get(1), "v2": r.get(3), "control": c.get(3)}
        start = c.get(1)  # the control's version 1: the same start as the rounds' version 1
        for k, v in values.items():
            if v is not None:
                metrics[f"{key}.{k}"] = round(float(v), 4)
        rows.append(
            {"pair": f"{a} ↔ {b}", "targeted": {a, b} == set(pair), **values, "control_v0": start}
        )
    v0, v2, ctl = (
        metrics.get(f"pair_error.{pair[0]}__{pair[1]}.{k}") for k in ("v0", "v2", "control")
    )
    if v0 is None:
        v0, v2, ctl = (
            metrics.get(f"pair_error.{pair[1]}__{pair[0]}.{k}") for k in ("v0", "v2", "control")
        )
    if v0 and v2 is not None and ctl is not None:
        drop, control_drop = (v0 - v2) / v0, (v0 - ctl) / v0
        metrics["target.drop"] = round(drop, 4)
        metrics["target.control_drop"] = round(control_drop, 4)
        metrics["target.met"] = int(drop > 0 and drop >= 1.2 * control_drop)
        if control_drop > 0:
            metrics["target.ratio"] = round(drop / control_drop, 3)
    return metrics, rows


def report(args: Any, plan: dict, pair: tuple, metrics: dict, rows: list, listed: list) -> None:
    def pct(x: Any) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    shown = [
        {"pair": r["pair"] + (" *" if r["targeted"] else ""), "v0": pct(r["v0"]),
         "v2 (2 rounds)": pct(r["v2"]), "control": pct(r["control"])}
        for r in rows
    ]  # fmt: skip
    for r in listed:
        print(f"round {r['id']} {r['a']}↔{r['b']}: {r['labels_spent']} labels, pinned "
              f"{r['pinned']}, before {pct(r['before'])} (v{r['from_version']}) after "
              f"{pct(r['after'])} (v{r['after_version']})", file=sys.stderr)  # fmt: skip
    summary = (
        f"patch: {pair[0]}↔{pair[1]} error fell {pct(metrics.get('target.drop'))} after two "
        f"rounds of {plan['budget']} labels vs {pct(metrics.get('target.control_drop'))} for "
        f"random labels; target (>= 1.2x the control's drop) "
        f"{'met' if metrics.get('target.met') else 'NOT met'} ({metrics['seconds']} s)"
    )
    columns = ["pair", "v0", "v2 (2 rounds)", "control"]
    print_report("Pair error on the held-out set (* targeted)", columns, shown, summary)
    if args.json is not None:
        path = Path(args.json)
        clean = [{**r, "targeted": bool(r["targeted"])} for r in rows]
        write_json(path, BENCH, bool(args.quick), machine_info(), metrics, clean)


if __name__ == "__main__":
    main()

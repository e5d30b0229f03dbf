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

Metrics: ``accuracy.<method>.k<k>``, ``accuracy.labelfarm.adaptive``,
``labels_per_item.labelfarm.adaptive``, ``labels_per_item.k<k>``, ``seconds.*``.

    python bench/aggregation.py --quick
    python bench/aggregation.py --json out.json
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
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from _common import (  # noqa: E402
    default_results_path,
    machine_info,
    make_parser,
    print_report,
    write_json,
)
from _crowd import N_CLASSES, Annotator, pool  # noqa: E402
from labelfarm import ml  # noqa: E402
from labelfarm.client import AppTransport, Client  # noqa: E402
from labelfarm.sample_data import FASHION_CLASSES, load_fashion_mnist  # noqa: E402
from labelfarm.services import projects, users, workspaces  # noqa: E402
from labelfarm.services.aggregation import item_label  # noqa: E402
from labelfarm.services.annotator_models import AnnotatorModels, FieldModel  # noqa: E402
from labelfarm.services.fitting import fit_class_model  # noqa: E402
from labelfarm.settings import Settings  # noqa: E402
from labelfarm.web.app import create_app  # noqa: E402

BENCH = "aggregation"
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-envs" / "aggregation"
PEERS = ("crowdkit_ds", "crowdkit_glad", "crowdlab")
METHODS = ("majority", "labelfarm", *PEERS)
OVERLAPS = (1, 2, 3, 5)
SWEEP = (0.8, 0.9, 0.96)  # adaptive targets also reported, beside --target
SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": list(FASHION_CLASSES)}]}
CLASS_INDEX = {name: k for k, name in enumerate(FASHION_CLASSES)}
console = Console(stderr=True)


# -- the service ---------------------------------------------------------------------------------
class Service:
    """labelfarm in process, a manager and one token per simulated annotator."""

    def __init__(self, tmp: Path, crowd: list[Annotator]) -> None:
        settings = Settings(
            data_dir=tmp / "data", database_url=f"sqlite:///{tmp}/lf.db", secret_key="bench"
        )
        self.app = create_app(settings)
        self.transport = AppTransport(self.app)
        db = self.app.state.ctx.db
        now = time.time()
        self.workspace = db.run(workspaces.create_workspace, slug="bench", name="Bench", now=now)
        self.crowd = crowd
        self.pseudonym_of: dict[str, int] = {}  # pseudonym -> annotator index
        self.manager = self._client(db, "manager", "manager", now)
        self.annotators = [
            self._client(db, a.name, "annotator", now, n) for n, a in enumerate(crowd)
        ]

    def _client(
        self, db: Any, name: str, role: str, now: float, index: int | None = None
    ) -> Client:
        user = db.run(
            users.register,
            username=name,
            password=None,
            now=now,
            workspace_id=self.workspace["id"],
            role=role,
        )
        if index is not None:
            self.pseudonym_of[user["pseudonym"]] = index
        token = db.run(users.create_token, user_id=user["id"], name="bench", now=now)["token"]
        return Client("http://bench", token=token, transport=self.transport)

    def project(self, name: str, indexes: np.ndarray, **settings: Any) -> int:
        pid = int(
            self.manager.create_project(self.workspace["id"], name, schema=SCHEMA, **settings)["id"]
        )
        body = "".join(json.dumps({"data": {"index": int(i)}}) + "\n" for i in indexes)
        self.manager.import_bytes(pid, body.encode(), format="jsonl")
        return pid

    def label(self, pid: int, truth: np.ndarray, seed: int, refit_every: int = 0) -> int:
        """Every annotator takes turns (next, then submit) until nobody gets work."""
        done = [0] * len(self.crowd)
        rounds = 0
        while True:
            rounds += 1
            busy = False
            order = np.random.default_rng([seed, rounds]).permutation(len(self.crowd))
            for n in order.tolist():
                a = self.crowd[n]
                want = a.per_turn if a.cap is None else min(a.per_turn, a.cap - done[n])
                if want <= 0:
                    continue
                tasks = self.annotators[n].next(pid, n=want)
                if not tasks:
                    continue
                busy = True
                batch = []
                for t in tasks:
                    index = int(t["data"]["index"])
                    answer = a.answer(int(truth[index]), index, n, seed)
                    label = FASHION_CLASSES[answer]
                    batch.append(
                        {"id": uuid.uuid4().hex, "task": t["task"], "value": {"label": label}}
                    )
                self.annotators[n].submit(pid, batch)
                done[n] += len(batch)
            if refit_every and rounds % refit_every == 0:
                self.refit(pid)
            if not busy:
                return sum(done)

    def refit(self, pid: int) -> None:
        self.manager.request("POST", f"/projects/{pid}/quality/refit")

    def export(self, pid: int) -> list[dict[str, Any]]:
        raw = b"".join(self.manager.export_stream(pid, format="jsonl"))
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def close(self) -> None:
        self.transport.close()
        self.app.state.ctx.db.dispose()


# -- one run's labels ----------------------------------------------------------------------------
class Run:
    """The exported labels of one project, in long format, aligned with the true classes."""

    def __init__(self, records: list[dict[str, Any]], position: dict[int, int], service: Service):
        self.items = sorted(position[r["data"]["index"]] for r in records)
        rows = []
        self.labelfarm = np.full(len(position), -1)
        self.order: dict[int, list[tuple[int, int]]] = {}
        for r in records:
            item = position[r["data"]["index"]]
            anns = sorted(r["annotations"], key=lambda a: a["id"])
            for a in anns:
                worker = service.pseudonym_of[a["annotator"]]
                label = CLASS_INDEX[a["value"]["label"]]
                rows.append((item, worker, label))
                self.order.setdefault(item, []).append((worker, label))
            if r["label"] and "label" in r["label"]["value"]:
                self.labelfarm[item] = CLASS_INDEX[r["label"]["value"]["label"]]
        self.long = np.array(rows, dtype=np.int64).reshape(-1, 3)

    @property
    def labels_per_item(self) -> float:
        return len(self.long) / max(1, len(self.items))


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
    args = parser.parse_args()
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
        f"{BENCH}: accuracy of the final labels vs the true classes", columns, rows, summary
    )
    machine = machine_info()
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, metrics, rows)
        console.print(f"wrote {path}")


if __name__ == "__main__":
    main()

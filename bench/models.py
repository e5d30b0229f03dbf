"""Models benchmark: training, evaluating and pre-labelling Fashion-MNIST through the job system.

For each database (SQLite, PostgreSQL) a real ``labelfarm serve`` starts on 127.0.0.1 with its
own worker turned off, and this benchmark runs ``labelfarm worker`` processes itself (to
measure them). Over HTTP and the CLI:

1. a project of Fashion-MNIST (Debian ``dataset-fashion-mnist``): the 60,000 training images
   imported with ``labelfarm import`` and labelled by annotators through the API (batched
   ``next``/``submit``), then the 10,000 test images imported as control gold — the held-out
   set every version is evaluated on, which never trains;
2. a ``train`` job per image predictor available (``pip install labelfarm[models]``; the torch
   CNN when torch is installed): the job's time and the version's test accuracy;
3. the best version promoted; a ``predict`` job for 10,000 items: items/s in the worker,
   and again on a local Ray head (when ray is installed);
4. the worker process tree's peak RSS over all of it;
5. 50 annotators looping next → submit on a separate 30,000-item project (``bench/queue.py``'s
   load) with no job, then while a predict job writes its 10,000 predictions: p99 latencies
   after a warm-up that is not measured (the annotators' first requests open connections and
   fill caches); the job starts as the measured window opens, and the p99 during it is over
   the requests started while it ran (its row's ``started_at`` to ``finished_at``).

Run from the repository root with the project installed (``pip install -e '.[bench,models]'``)::

    python bench/models.py --quick
    python bench/models.py                      # full run, saved to bench/results/
    python bench/models.py --backends sqlite --predictors image-pixels-logreg.v1 --json out.json
"""

from __future__ import annotations

import os
import sys

# ``python bench/models.py`` puts bench/ first on sys.path, where queue.py would shadow the
# standard library's ``queue``: move bench/ behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    sys.path.append(sys.path.pop(0))

import concurrent.futures  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rich.console import Console  # noqa: E402

from _common import (  # noqa: E402
    PeakRSS,
    default_results_path,
    machine_info,
    make_parser,
    warn_if_busy,
    write_json,
)
from _models_data import SCHEMA, Split, item_ids, submit_labels, write_split  # noqa: E402
from _models_report import Results, report  # noqa: E402
from _models_server import (  # noqa: E402
    ModelsTarget,
    RayHead,
    job_seconds,
    ray_available,
    wait_job,
    wait_running,
    while_running,
)
from _queue_load import run_load  # noqa: E402
from _targets import Api, BenchError, timed  # noqa: E402
from labelfarm.sample_data import fashion_mnist_available  # noqa: E402

BENCH = "models"
MODELS_EXTRAS = (None, "", "models", "torch")  # labelfarm[models], and the torch CNN's extra
console = Console(stderr=True)


@dataclass(frozen=True)
class Plan:
    n_train: int
    n_test: int
    n_predict: int  # items per predict job
    load_items: int  # items of each annotators' project
    min_load_s: float  # the shortest load window
    timeout_s: float  # per request of the load client
    warmup_s: float  # before each window: annotators start, connections open, not measured
    annotators: int = 50
    fillers: int = 4
    client: str = "aiohttp"
    job_timeout_s: float = 3600


FULL = Plan(60_000, 10_000, 10_000, 30_000, 10.0, 30.0, 2.0)
QUICK = Plan(2_000, 500, 500, 10_000, 3.0, 10.0, 1.0)


@dataclass(frozen=True)
class LoadWindow:
    """What ``run_load`` reads of a plan."""

    duration_s: float
    timeout_s: float
    warmup_s: float
    keep_samples: bool = False  # return each request's start time and latency


@dataclass
class Data:
    folder: Path
    train_path: Path
    train: Split
    test_path: Path
    test: Split


def parse_args(argv: list[str] | None = None) -> Any:
    parser = make_parser(__doc__.split("\n\n")[0] if __doc__ else BENCH)
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="databases, comma-separated (sqlite,postgresql)",
    )
    parser.add_argument("--predictors", help="image predictors to train (default: all available)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray head run")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database part)",
    )
    parser.add_argument("--labelfarm-cmd", help="how to run labelfarm")
    return parser.parse_args(argv)


def image_predictors(api: Api, wanted: str | None) -> list[str]:
    """The image predictors ``labelfarm[models]`` provides here (its own and the torch CNN
    when torch is installed), or the ones asked for."""
    listed = api.call("GET", "/api/v1/predictors")
    rows = [r for r in listed.get("predictors", listed) if r.get("input") == "image"]
    available = [r["name"] for r in rows if r.get("available")]
    if wanted:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        missing = [n for n in names if n not in available]
        if missing:
            raise BenchError(f"not available here: {missing}; available: {available}")
        return names
    chosen = [r["name"] for r in rows if r.get("available") and r.get("extra") in MODELS_EXTRAS]
    others = [
        f"{r['name']} ({r.get('reason') or 'extra ' + str(r.get('extra'))})"
        for r in rows
        if r["name"] not in chosen
    ]
    if others:
        console.log("not measured (--predictors to add): " + "; ".join(others))
    return chosen


def evaluation_of(version: dict[str, Any]) -> dict[str, Any]:
    """The version's evaluation of the ``label`` field, however it is nested."""
    ev = version.get("evaluation") or {}
    for key in ("label", "fields"):
        if isinstance(ev.get(key), dict):
            ev = ev[key].get("label", ev[key])
    if "accuracy" not in ev:
        raise BenchError(f"version {version.get('version')} has no accuracy: {version}")
    return dict(ev)


def setup_project(target: ModelsTarget, data: Data, plan: Plan, results: Results) -> int:
    """The Fashion-MNIST project: training images labelled by annotators, test images gold."""
    p = target.prefix
    body = {
        "name": "fashion-mnist",
        "schema": SCHEMA,
        "overlap": 1,
        "lease_seconds": 600,
        "max_live_leases": 1000,
        "ordering": "fifo",
    }
    ws = target._workspace_id
    project_id = int(target.api.call("POST", f"/api/v1/workspaces/{ws}/projects", json=body)["id"])
    with timed() as t:
        target.cli("import", str(project_id), str(data.train_path))
    results.add_setup(
        p, "import_train", "import training images (CLI)", len(data.train.names), t[0]
    )
    tokens = target.create_annotators(max(plan.fillers, plan.annotators))
    with timed() as t:
        submit_labels(target.base_url, project_id, tokens[: plan.fillers], data.train)
    results.add_setup(
        p,
        "label_train",
        f"label them (API, {plan.fillers} annotators)",
        len(data.train.names),
        t[0],
    )
    with timed() as t:
        target.cli("import", str(project_id), str(data.test_path))
    results.add_setup(p, "import_gold", "import test images (gold)", len(data.test.names), t[0])
    console.log(f"{p}: project {project_id} ready")
    return project_id


def train(target: ModelsTarget, project_id: int, predictor: str, plan: Plan) -> dict[str, Any]:
    api = target.api
    got = api.call(
        "POST",
        f"/api/v1/projects/{project_id}/models/train",
        json={"predictor": predictor},
        expect=(200, 201, 202),
    )
    job = wait_job(api, int(got["job"]["id"]), plan.job_timeout_s)
    listed = api.call("GET", f"/api/v1/projects/{project_id}/models")
    versions = listed.get("versions", listed) if isinstance(listed, dict) else listed
    version = next((v for v in versions if v.get("job_id") == job["id"]), None)
    if version is None:
        raise BenchError(f"train job {job['id']} left no version: {job.get('result')}")
    ev = evaluation_of(version)
    return {"job": {**job, "seconds": job_seconds(job)}, "version": {**version, **ev}}


def predict(api: Api, project_id: int, version: int, ids: list[int]) -> int:
    """Starts a predict job for ``ids`` with ``version``; its id."""
    got = api.call(
        "POST",
        f"/api/v1/projects/{project_id}/models/{version}/predict",
        json={"item_ids": ids},
        expect=(200, 201, 202),
    )
    return int(got["job"]["id"])


def measure(
    target: ModelsTarget, data: Data, plan: Plan, args: Any, results: Results, only: list[str]
) -> list[str]:
    """Every phase on one running server; returns the predictors trained, best first."""
    p, api = target.prefix, target.api
    project_id = setup_project(target, data, plan, results)
    ids = item_ids(api, project_id)
    test_ids = [ids[n] for n in data.test.names][: plan.n_predict]
    train_ids = [ids[n] for n in data.train.names]
    names = only or image_predictors(api, args.predictors)
    trained: dict[str, dict[str, Any]] = {}
    with target.worker() as worker, PeakRSS(worker.pid) as rss:
        for name in names:
            console.log(f"{p}: training {name}")
            trained[name] = train(target, project_id, name, plan)
            results.add_training(p, name, trained[name]["job"], trained[name]["version"])
            console.log(
                f"{p}: {name}: {trained[name]['version']['accuracy']:.4f} accuracy, "
                f"{trained[name]['job']['seconds']:.1f} s"
            )
        ranked = sorted(trained, key=lambda n: -float(trained[n]["version"]["accuracy"]))
        best = ranked[0]
        results.add_best(p, best)
        version = int(trained[best]["version"]["version"])
        api.call("POST", f"/api/v1/projects/{project_id}/models/{version}/promote", json={})
        job_id = predict(api, project_id, version, test_ids)
        local_s = job_seconds(wait_job(api, job_id, plan.job_timeout_s))
        results.add_predict(p, "local", len(test_ids), local_s, best, check=True)
        load_under_job(
            target, project_id, version, train_ids[: plan.n_predict], local_s, plan, results
        )
        results.add_rss(p, rss.overall_mb)
    if ray_available() and not args.no_ray and p == results.first_target:
        ray_predict(
            target,
            project_id,
            version,
            train_ids[plan.n_predict : 2 * plan.n_predict],
            best,
            plan,
            results,
        )
    return ranked


def load_under_job(
    target: ModelsTarget,
    project_id: int,
    version: int,
    ids: list[int],
    local_s: float,
    plan: Plan,
    results: Results,
) -> None:
    """C annotators with no job, then while a predict job writes ``len(ids)`` predictions."""
    p, api, c = target.prefix, target.api, plan.annotators
    tokens = target.create_annotators(c)
    window = LoadWindow(plan.min_load_s, plan.timeout_s, plan.warmup_s)
    idle_project = target.create_project("annotators, no job")
    target.import_items(idle_project, plan.load_items)
    load = run_load(target, idle_project, tokens[:c], window, plan.client, plan.load_items)
    results.add_load(p, "idle", load, None)
    busy_project = target.create_project("annotators, predict job")
    target.import_items(busy_project, plan.load_items)
    # the load window: as long as the job took alone, so every request falls while it writes;
    # the job starts when the annotators' warm-up ends and the measured window begins
    window = LoadWindow(max(plan.min_load_s, local_s), plan.timeout_s, plan.warmup_s, True)
    args = (target, busy_project, tokens[:c], window, plan.client, plan.load_items)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_load, *args)
        time.sleep(plan.warmup_s)
        job_id = predict(api, project_id, version, ids)
        wait_running(api, job_id)
        load = running.result()
    job = wait_job(api, job_id, plan.job_timeout_s)
    load = while_running(load, job)
    results.add_load(p, "during_job", load, job_seconds(job))
    results.add_predict(p, "local, under load", len(ids), job_seconds(job), "", check=False)
    console.log(f"{p}: C={c} next p99 {load['next_ms']['p99']:.0f} ms during the predict job")


def ray_predict(
    target: ModelsTarget,
    project_id: int,
    version: int,
    ids: list[int],
    best: str,
    plan: Plan,
    results: Results,
) -> None:
    head = RayHead(target.log.parent)
    try:
        console.log(f"{target.prefix}: starting a local Ray head on {head.address}")
        head.start()
        with target.worker(ray_address=head.address):
            job_id = predict(target.api, project_id, version, ids)
            job = wait_job(target.api, job_id, plan.job_timeout_s)
        results.add_predict(target.prefix, "ray", len(ids), job_seconds(job), best, check=False)
    finally:
        head.stop()


def prepare_data(plan: Plan) -> Data:
    folder = Path(tempfile.mkdtemp(prefix="labelfarm-bench-models-data-"))
    with timed() as t:
        train_path, train_split = write_split(folder, "train", plan.n_train, gold=False)
        test_path, test_split = write_split(folder, "test", plan.n_test, gold=True)
    console.log(f"wrote {plan.n_train + plan.n_test:,} PNG files in {t[0]:.1f} s")
    return Data(folder, train_path, train_split, test_path, test_split)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    if not fashion_mnist_available():
        console.print("[red]Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
        return 2
    plan = QUICK if args.quick else FULL
    machine = machine_info()
    warn_if_busy(console)
    log_dir = Path(tempfile.mkdtemp(prefix="labelfarm-bench-models-"))
    data = prepare_data(plan)
    results = Results(quick=args.quick)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results.first_target = backends[0]
    only: list[str] = []
    for backend in backends:
        target = ModelsTarget(backend, args.pg_url, log_dir, args.labelfarm_cmd)
        try:
            console.log(f"{backend}: starting server")
            target.start()
            ranked = measure(target, data, plan, args, results, only)
            only = only or ranked[:1]  # the other databases train the best predictor only
        except BenchError as exc:
            console.print(f"[red]{backend}: {exc}[/red]")
            results.failed.append(backend)
        finally:
            target.stop()
    shutil.rmtree(data.folder, ignore_errors=True)
    path = args.json or (None if args.quick else default_results_path(BENCH, machine))
    if path is not None:
        write_json(path, BENCH, args.quick, machine, results.metrics, results.rows)
        console.log(f"results written to {path}")
    if results.failed:
        console.log(f"logs: {log_dir}")
    report(results)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""``labelfarm worker`` (runs jobs) and ``labelfarm jobs …`` (lists, shows, follows, cancels)."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from labelfarm.cli.common import console, fail, open_db, open_media
from labelfarm.errors import LabelfarmError
from labelfarm.settings import Settings

jobs_app = typer.Typer(help="Background jobs: list, show, follow, cancel.", no_args_is_help=True)

POLL_SECONDS = 0.5


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM or SIGINT: stop after giving the running job back; a second one: at once
    (the job is taken up again when its lease runs out)."""

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Stop when the process that started this one is gone."""

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the jobs due now, then exit.")] = False,
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="Also load job kinds from this module (repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The worker's name in the jobs' rows.")] = None,
    exit_with_parent: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run background jobs (training, pre-labelling, imports, refits) until stopped.
    `labelfarm serve` starts one; run more on other machines against the same database."""
    from labelfarm.jobs.kinds import kind_names, load_kinds
    from labelfarm.jobs.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    if settings.worker_nice:  # heavy work yields the CPU to the server and the database
        os.nice(settings.worker_nice)
    load_kinds()
    for module in imports or ():
        importlib.import_module(module)
    db = open_db(settings)
    runner = Worker(settings, db, open_media(settings), name=name)
    console.print(f"job worker {runner.name}: kinds {', '.join(kind_names())}")
    try:
        if once:
            ran = runner.run_until_idle()
            console.print(f"ran {len(ran)} jobs")
            return
        stop = threading.Event()
        _stop_on_signals(stop)
        if exit_with_parent is not None:
            _watch_parent(exit_with_parent, stop)
        runner.run_forever(stop)
    finally:
        db.dispose()


@jobs_app.command("list")
def list_command(
    project: Annotated[int | None, typer.Option(help="Only this project's jobs.")] = None,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """The newest jobs, with their state and progress."""
    from labelfarm.services import job_queue

    db = open_db()
    jobs = db.run(
        job_queue.list_jobs,
        project_id=project,
        states=[state] if state else None,
        kinds=[kind] if kind else None,
        limit=limit,
    )
    table = Table("id", "kind", "project", "state", "progress", "runs", "message")
    for j in jobs:
        done = f"{j.progress_done}/{j.progress_total}" if j.progress_total else str(j.progress_done)
        message = j.error if j.state == "failed" and j.error else j.message
        table.add_row(
            str(j.id),
            j.kind,
            str(j.project_id or "-"),
            j.state,
            done,
            f"{j.attempts}/{j.max_attempts}",
            message,
        )
    console.print(table)


@jobs_app.command("show")
def show_command(job_id: Annotated[int, typer.Argument(help="The job's id.")]) -> None:
    """One job as JSON: parameters, state, progress, result or error."""
    from labelfarm.jsonutil import dumps
    from labelfarm.services import job_queue

    try:
        job = open_db().run(job_queue.get_job, job_id)
    except LabelfarmError as exc:
        fail(exc)
    typer.echo(dumps(job.to_dict()))


@jobs_app.command("watch")
def watch_command(job_id: Annotated[int, typer.Argument(help="The job's id.")]) -> None:
    """Follow a job with a progress bar until it ends; exit 1 if it failed or was cancelled."""
    from labelfarm.services import job_queue

    db = open_db()
    try:
        job = db.run(job_queue.get_job, job_id)
    except LabelfarmError as exc:
        fail(exc)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[state]} {task.fields[message]}"),
        console=console,
    ) as bar:
        task = bar.add_task(f"job {job.id} {job.kind}", total=None, state="", message="")
        while True:
            bar.update(
                task,
                completed=job.progress_done,
                total=job.progress_total,
                state=job.state,
                message=job.message,
            )
            if job.ended:
                break
            time.sleep(POLL_SECONDS)
            job = db.run(job_queue.get_job, job_id)
    _ended(job)


def _ended(job: Any) -> None:
    from labelfarm.jsonutil import dumps

    if job.state == "done":
        console.print(f"job {job.id} done")
        if job.result is not None:
            typer.echo(dumps(job.result))
        return
    reason = f": {job.error}" if job.state == "failed" and job.error else ""
    console.print(f"[red]job {job.id} {job.state}[/red]{reason}")
    raise typer.Exit(1)


@jobs_app.command("cancel")
def cancel_command(job_id: Annotated[int, typer.Argument(help="The job's id.")]) -> None:
    """Cancel a job: a queued one at once, a running one at its next progress report."""
    from labelfarm.services import job_queue

    try:
        job = open_db().run(job_queue.request_cancel, job_id, now=time.time())
    except LabelfarmError as exc:
        fail(exc)
    what = "cancel requested" if job.state == "running" else job.state
    console.print(f"job {job.id}: {what}")

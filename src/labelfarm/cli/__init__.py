"""The ``labelfarm`` command. Each command is a thin wrapper over a library function."""

from __future__ import annotations

import getpass
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from labelfarm.cli.admin import audit_app, media_app, token_app, user_app
from labelfarm.cli.common import (
    FORMAT,
    TranscriptsAs,
    console,
    fail,
    open_db,
    open_media,
    progress_bar,
)
from labelfarm.cli.from_file import guess as guess_schema_command
from labelfarm.cli.from_file import project_app
from labelfarm.cli.jobs import jobs_app
from labelfarm.cli.jobs import worker as worker_command
from labelfarm.cli.schema import schema_app
from labelfarm.errors import LabelfarmError
from labelfarm.settings import Settings

app = typer.Typer(
    help="labelfarm: a self-hosted, human-in-the-loop data labeling platform.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(media_app, name="media")
app.add_typer(schema_app, name="schema")
schema_app.command("guess")(guess_schema_command)
app.add_typer(project_app, name="project")
app.add_typer(jobs_app, name="jobs")
app.command("worker")(worker_command)


@app.callback()
def _operator(
    ctx: typer.Context,
    as_: Annotated[
        str | None, typer.Option("--as", help="Your name in the audit log (LABELFARM_OPERATOR).")
    ] = None,
) -> None:
    """Record what a command changes in the audit log under the operator's name (not the
    server's requests nor jobs: `serve`, `demo` and `worker` would pass it on to every one)."""
    from labelfarm.services import audit

    if ctx.invoked_subcommand not in ("serve", "demo", "worker"):
        ctx.with_resource(audit.acting_as(as_ or Settings().operator or audit.login_name()))


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations (also done on every start)."""
    settings = Settings()
    open_db(settings)
    console.print(f"database is up to date: {settings.resolved_database_url}")


@app.command()
def init(
    admin_username: Annotated[
        str, typer.Option(help="Username of the first administrator.")
    ] = "admin",
    admin_password: Annotated[
        str | None, typer.Option(help="Password (asked for when not given).")
    ] = None,
) -> None:
    """Create the database and the first instance administrator."""
    from labelfarm.services import users

    db = open_db()
    password = admin_password or getpass.getpass(f"password for {admin_username}: ")
    try:
        user = db.run(
            users.register,
            username=admin_username,
            password=password,
            now=time.time(),
            is_superuser=True,
        )
    except LabelfarmError as exc:
        fail(exc)
    console.print(f"created administrator {user['username']} (id {user['id']})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes; default: 1 on SQLite, one per two cores on PostgreSQL."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the web pages and the API, with a job worker beside them (unless
    LABELFARM_RUN_WORKER=false)."""
    import uvicorn

    from labelfarm.cli.supervise import supervised_worker
    from labelfarm.db.dialect import Dialect

    settings = Settings()
    sqlite = Dialect.of(settings.resolved_database_url) is Dialect.SQLITE
    if workers is None:
        # On PostgreSQL a process waits for the database asynchronously, so one process
        # keeps a core busy with many annotators; the other core is the database's.
        workers = settings.workers or (1 if sqlite else max(1, (os.cpu_count() or 1) // 2))
    if workers > 1 and sqlite:
        console.print("[yellow]SQLite has one writer: serving with one process[/yellow]")
        workers = 1
    # Migrate once, before workers start, in a child process: with several workers this
    # process stays on as their supervisor and need not hold the database libraries.
    import subprocess

    done = subprocess.run([sys.executable, "-m", "labelfarm.cli", "migrate"], check=False)
    if done.returncode != 0:
        raise typer.Exit(done.returncode)
    host, port = host or settings.host, port or settings.port
    console.print(f"labelfarm serving on http://{host}:{port}")
    with supervised_worker(settings):
        uvicorn.run(
            "labelfarm.web.asgi:create",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            http="httptools",
            loop="uvloop",
            proxy_headers=False,  # the client's address: LABELFARM_TRUSTED_PROXIES decides
        )


@app.command("import")
def import_cmd(
    project_id: Annotated[int, typer.Argument(help="Project id.")],
    path: Annotated[Path, typer.Argument(help="File or folder to import.", exists=True)],
    format: Annotated[str | None, FORMAT] = None,
    transcripts: Annotated[
        TranscriptsAs | None,
        typer.Option(help="Transcripts beside audio files: a pre-fill or labels."),
    ] = None,
) -> None:
    """Import items into a project, all or nothing, with a progress bar."""
    from labelfarm.formats.detect import guess_format
    from labelfarm.services.imports import import_items, limits_from
    from labelfarm.services.projects import load_project

    settings = Settings()
    db = open_db(settings)
    media = open_media(settings)
    try:
        fmt = format or guess_format(path)
        project = db.run(load_project, project_id)
        with progress_bar() as bar:
            task = bar.add_task(f"importing {path.name}", total=None, rows=0)

            def on_progress(rows: int, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, rows=rows)

            result = db.run(
                import_items,
                project,
                path,
                fmt,
                media=media,
                now=time.time(),
                user_id=None,
                batch_rows=settings.import_batch_rows,
                on_progress=on_progress,
                base_dir=path if path.is_dir() else path.parent,
                options={"transcripts": transcripts.value} if transcripts else None,
                limits=limits_from(settings),
            )
    except LabelfarmError as exc:
        fail(exc)
    console.print(f"imported {result.n_items:,} items (import {result.id})")
    for note in result.notes:  # what the file held that the import left out, on purpose
        console.print(f"  left out ({note['count']:,}×): {note['reason']}")


@app.command()
def export(
    project_id: Annotated[int, typer.Argument(help="Project id.")],
    out: Annotated[Path, typer.Argument(help="File to write ('-' for standard output).")],
    format: Annotated[str, typer.Option("--format", "-f", help="Format name.")] = "jsonl",
    completed_by: Annotated[
        Path | None,
        typer.Option(
            help="For a migration: a JSON file mapping labelfarm usernames to the annotators' "
            "user ids (or emails) in the other tool (Label Studio's completed_by); imported "
            "annotators are carried back too. Default: pseudonyms only.",
            exists=True,
        ),
    ] = None,
    media_url: Annotated[
        str | None,
        typer.Option(
            help="Label Studio: what goes before the path of media stored in labelfarm "
            "(default /data/local-files/?d=, Label Studio's local files)."
        ),
    ] = None,
) -> None:
    """Export a project's items, annotations and current labels, streamed."""
    from labelfarm.services.exports import export_stream
    from labelfarm.services.projects import load_project

    settings = Settings()
    db = open_db(settings)
    media = open_media(settings)
    try:
        project = db.run(load_project, project_id)
        options = _export_options(completed_by, media_url)
        chunks, _ = db.run(
            export_stream,
            project,
            format,
            now=time.time(),
            actor_id=None,
            media=media,
            options=options,
        )
        sink = sys.stdout.buffer if str(out) == "-" else out.open("wb")
        n = 0
        with sink, progress_bar() as bar:
            task = bar.add_task("exporting", total=None, rows=0)
            for chunk in chunks:
                sink.write(chunk)
                n += chunk.count(b"\n")
                bar.update(task, rows=n)
    except LabelfarmError as exc:
        fail(exc)
    if str(out) != "-":
        console.print(f"wrote {out}")


def _export_options(completed_by: Path | None, media_url: str | None) -> dict[str, object]:
    import orjson

    from labelfarm.errors import InvalidInput

    options: dict[str, object] = {}
    if completed_by is not None:
        try:
            options["completed_by"] = orjson.loads(completed_by.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"{completed_by}: not JSON ({exc})", [{"field": "completed_by"}]
            ) from None
    if media_url is not None:
        options["media_url"] = media_url
    return options


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8080,
    serve_it: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve when ready.")] = True,
    n_images: Annotated[int, typer.Option(help="Product photos to import.")] = 500,
) -> None:
    """Set up a demo workspace (users, a product-photo project, a text moderation project,
    a transcription project) and serve it on 127.0.0.1."""
    from labelfarm.demo import build_demo

    settings = Settings()
    try:
        info = build_demo(settings, n_images=n_images, log=console.print)
    except LabelfarmError as exc:
        fail(exc)
    console.print("\n[bold]Demo users[/bold] (username / password / role):")
    for u in info["users"]:
        console.print(f"  {u['username']:<12} {u['password']:<22} {u['role']}")
    console.print(f"credentials are also in {info['credentials_file']}")
    if serve_it:
        serve(host="127.0.0.1", port=port)


if __name__ == "__main__":  # pragma: no cover
    app()

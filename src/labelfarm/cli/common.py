"""What every command shares: the console, the database, progress bars, failing politely."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from labelfarm.errors import LabelfarmError
from labelfarm.settings import Settings

if TYPE_CHECKING:
    from labelfarm.db.engine import Database
    from labelfarm.services.media import MediaStore

console = Console(stderr=True)


def open_db(settings: Settings | None = None, *, run_migrations: bool = True) -> Database:
    from labelfarm.db.engine import Database, migrate
    from labelfarm.services import audit

    settings = settings or Settings()
    db = Database(settings.resolved_database_url, synchronous=settings.sqlite_synchronous)
    audit.use_key(db, settings.resolved_audit_key)
    if run_migrations:
        migrate(db)
    return db


def fail(exc: LabelfarmError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    for d in exc.details[:50]:
        console.print("  " + ", ".join(f"{k}: {v}" for k, v in d.items() if v not in ("", None)))
    if len(exc.details) > 50:
        console.print(f"  … and {len(exc.details) - 50} more")
    raise typer.Exit(1)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
        console=console,
    )


def write_out(text: str, out: Path | None) -> None:
    """Print ``text``, or write it to ``out`` and say so."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


def open_media(settings: Settings) -> MediaStore:
    """The instance's media store, as the server opens it."""
    from labelfarm.services.media import MediaStore

    return MediaStore(settings.resolved_media_root, settings.resolved_secret_key)


# the format of a file to read: given, else told from its name and content
FORMAT = typer.Option(
    "--format", "-f", help="Format name (default: told from the file's name and content)."
)


class TranscriptsAs(enum.StrEnum):
    """What transcripts beside audio files become when imported."""

    predictions = "predictions"
    annotations = "annotations"

"""``labelfarm schema guess`` and ``labelfarm project from-file``: a schema proposed from a
file, and a new project made from a file (the same functions the API uses)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
import yaml

from labelfarm.cli.common import FORMAT, console, fail, open_db, open_media, write_out
from labelfarm.errors import LabelfarmError
from labelfarm.settings import Settings

project_app = typer.Typer(help="Projects made from files.", no_args_is_help=True)


def guess(
    path: Annotated[Path, typer.Argument(help="File, folder or zip to read.", exists=True)],
    format: Annotated[str | None, FORMAT] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the schema here (default: print).")
    ] = None,
) -> None:
    """Propose a schema (YAML) that keeps everything the file holds; a file that cannot
    be read is an error saying where."""
    from labelfarm.services.project_from_file import propose

    try:
        fmt, schema = propose(path, format)
    except LabelfarmError as exc:
        fail(exc)
    text = f"# proposed from {path.name} ({fmt})\n" + yaml.safe_dump(
        schema, sort_keys=False, allow_unicode=True
    )
    write_out(text, out)


@project_app.command("from-file")
def from_file(
    workspace: Annotated[str, typer.Argument(help="Workspace slug.")],
    name: Annotated[str, typer.Argument(help="Name of the new project.")],
    path: Annotated[Path, typer.Argument(help="File, folder or zip to import.", exists=True)],
    format: Annotated[str | None, FORMAT] = None,
) -> None:
    """Create a project whose schema is proposed from a file, and import the file into it;
    nothing is created when the file cannot be read or does not fit."""
    from labelfarm.services import workspaces
    from labelfarm.services.imports import limits_from
    from labelfarm.services.project_from_file import create_project_from_file

    settings = Settings()
    db = open_db(settings)
    try:
        ws = db.run(workspaces.workspace_by_slug, workspace)
        project, result = db.run(
            create_project_from_file,
            workspace_id=ws["id"],
            name=name,
            path=path,
            media=open_media(settings),
            now=time.time(),
            actor_id=None,
            fmt=format,
            limits=limits_from(settings),
        )
    except LabelfarmError as exc:
        fail(exc)
    console.print(
        f"created project {project['name']!r} (id {project['id']}) and imported "
        f"{result.n_items:,} items, {result.n_annotations:,} annotations (import {result.id})"
    )

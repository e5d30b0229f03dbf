"""``labelfarm schema``: label schemas from and to other tools' configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from labelfarm.cli.common import fail, write_out
from labelfarm.errors import LabelfarmError

schema_app = typer.Typer(help="Label schemas from and to other tools.", no_args_is_help=True)


@schema_app.command("from-label-config")
def from_label_config(
    config: Annotated[Path, typer.Argument(help="A Label Studio label config (XML).", exists=True)],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the schema here (default: print).")
    ] = None,
) -> None:
    """Read a Label Studio label config into a labelfarm schema (YAML), keeping every label
    and choice in order; an unsupported tag is an error giving its line."""
    from labelfarm.formats.labelstudio_config import schema_from_label_config

    try:
        schema = schema_from_label_config(config.read_text(encoding="utf-8"))
    except LabelfarmError as exc:
        fail(exc)
    write_out(yaml.safe_dump(schema, sort_keys=False, allow_unicode=True), out)


@schema_app.command("to-label-config")
def to_label_config(
    schema: Annotated[Path, typer.Argument(help="A labelfarm schema (YAML or JSON).", exists=True)],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the config here (default: print).")
    ] = None,
) -> None:
    """Write a Label Studio label config for a labelfarm schema."""
    from labelfarm.formats.labelstudio_config import label_config_from_schema
    from labelfarm.schema import parse_schema_text

    try:
        config = label_config_from_schema(parse_schema_text(schema.read_text(encoding="utf-8")))
    except LabelfarmError as exc:
        fail(exc)
    write_out(config, out)

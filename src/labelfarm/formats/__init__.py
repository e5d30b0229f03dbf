"""Importers and exporters, one module per format, registered by name.

    reader("jsonl")(source) -> iterator of (location, ItemRecord | list[RowProblem])
    writer("csv")(records, schema, ctx) -> iterator of bytes

Importing a module registers its formats; :func:`load_builtin` imports them all.
"""

from labelfarm.formats.registry import (
    ExportContext,
    ExportRecord,
    ImportSource,
    ItemRecord,
    RowProblem,
    load_builtin,
    reader,
    reader_names,
    register_reader,
    register_writer,
    writer,
    writer_extension,
    writer_names,
)

__all__ = [
    "ExportContext",
    "ExportRecord",
    "ImportSource",
    "ItemRecord",
    "RowProblem",
    "load_builtin",
    "reader",
    "reader_names",
    "register_reader",
    "register_writer",
    "writer",
    "writer_extension",
    "writer_names",
]

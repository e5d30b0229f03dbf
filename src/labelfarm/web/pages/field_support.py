"""What the annotate page can show of a project's schema.

A field type has a labelling tool in the browser when its module
``static/js/fields/<type>.js`` exists: the files present are the one source of truth (the
page loads a field's module by its type name). Every data kind is shown: images on a
stage, audio as a waveform with a player (``static/js/lib/audio_stage.js``).
A project with a field or data kind the page cannot show is labelled through the API or
the SDK; the annotate page says so instead of handing out tasks, and the manager's pages
warn about it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from labelfarm.schema import DATA_KINDS, field_type_names
from labelfarm.web.pages.assets import ASSETS

_FIELDS_DIR = "js/fields/"
# data kinds the page draws: images and audio on a stage, text, the rest as a short list
SHOWN_DATA_KINDS = frozenset(DATA_KINDS)


@cache
def browser_field_types() -> frozenset[str]:
    """Registered field types that have a browser module in ``static/js/fields/``."""
    names = (rel.removeprefix(_FIELDS_DIR) for rel in ASSETS if rel.startswith(_FIELDS_DIR))
    present = {n.removesuffix(".js") for n in names if n.endswith(".js") and "/" not in n}
    return frozenset(present & set(field_type_names()))


def schema_gaps(schema: dict[str, Any] | None) -> dict[str, list[dict[str, str]]] | None:
    """The fields and data keys of ``schema`` (its dict form) the annotate page cannot
    show: ``{"fields": [{"name", "type"}], "data": [{"key", "kind"}]}``, or None."""
    if not schema:
        return None
    supported = browser_field_types()
    fields = [
        {"name": str(f.get("name", "")), "type": str(f.get("type", ""))}
        for f in schema.get("fields") or []
        if f.get("type") not in supported
    ]
    data = [
        {"key": str(key), "kind": str(kind)}
        for key, kind in (schema.get("data") or {}).items()
        if kind not in SHOWN_DATA_KINDS
    ]
    return {"fields": fields, "data": data} if fields or data else None

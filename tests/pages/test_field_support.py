"""Which field types and data kinds the annotate page can show (web/pages/field_support.py)."""

from __future__ import annotations

from labelfarm.schema import field_type_names
from labelfarm.web.pages.assets import STATIC_DIR
from labelfarm.web.pages.field_support import browser_field_types, schema_gaps

FIELDS = STATIC_DIR / "js" / "fields"
HELPERS = {"index", "section"}  # modules of the folder that are no field type


def test_the_browser_types_are_the_modules_present() -> None:
    modules = {p.stem for p in FIELDS.glob("*.js")}
    assert browser_field_types() == modules - HELPERS
    # every module is named after a registered field type (a misspelt one would never load)
    assert modules - HELPERS <= set(field_type_names())
    assert {"choice", "bbox"} <= browser_field_types()


def test_gaps_name_each_field_and_data_key_the_page_cannot_show() -> None:
    missing = sorted(set(field_type_names()) - browser_field_types())
    assert missing, "every field type has a browser module: nothing left to warn about"
    schema = {
        "data": {"clip": "audio", "image": "image", "caption": "text"},
        "fields": [{"name": "kind", "type": "choice", "options": ["a"]}]
        + [{"name": f"f_{t}", "type": t} for t in missing],
    }
    gaps = schema_gaps(schema)
    assert gaps == {
        "fields": [{"name": f"f_{t}", "type": t} for t in missing],
        "data": [],  # every data kind is shown: audio has its waveform and player
    }


def test_a_schema_the_page_can_show_has_no_gaps() -> None:
    schema = {
        "data": {"image": "image"},
        "fields": [{"name": "b", "type": "bbox", "labels": ["x"]}],
    }
    assert schema_gaps(schema) is None
    assert schema_gaps(None) is None

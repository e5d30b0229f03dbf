"""Gold comes in with the items: the ``gold`` and ``gold_kind`` keys of a JSON import, and
columns of a CSV or TSV file (a JSON ``gold`` column, or a ``gold.<field>`` column per field)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from labelfarm.errors import ImportFailed
from labelfarm.jsonutil import loads
from labelfarm.services.imports import import_items

SCHEMA = {
    "fields": [
        {"name": "label", "type": "choice", "options": ["a", "b", "c"]},
        {"name": "tags", "type": "multichoice", "options": ["x", "y", "z"], "required": False},
        {"name": "count", "type": "number", "required": False},
    ]
}


def _import(world: Any, project: Any, tmp_path: Path, body: str, fmt: str) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.{fmt}"
    path.write_text(body)
    import_items(
        world.db, project, path, fmt, media=world.ctx.media, now=world.clock(), user_id=None
    )


def _gold(world: Any, project_id: int) -> dict[str, tuple[Any, str | None]]:
    """Each item's text: (its gold answer or None, its gold kind)."""
    with world.db.begin("read") as conn:
        rows = conn.execute(
            text("SELECT data, gold, gold_kind FROM items WHERE project_id = :p ORDER BY id"),
            {"p": project_id},
        ).all()
    return {loads(r[0])["text"]: (loads(r[1]) if r[1] else None, r[2]) for r in rows}


def _problems(world: Any, project: Any, tmp_path: Path, body: str, fmt: str) -> list[dict]:
    with pytest.raises(ImportFailed) as caught:
        _import(world, project, tmp_path, body, fmt)
    return [{k: d[k] for k in ("location", "field")} for d in caught.value.details]


@pytest.fixture
def project(world: Any) -> Any:
    return world.project(world.workspace(), schema=SCHEMA)


def test_csv_gold_by_field_columns(world, project, tmp_path):
    _import(
        world,
        project,
        tmp_path,
        "text,gold.label,gold.tags,gold.count,gold_kind\n"
        "one,a,x|z,3,training\n"
        "two,b,,,\n"
        "three,,,,\n",
        "csv",
    )
    assert _gold(world, project.id) == {
        "one": ({"label": "a", "tags": ["x", "z"], "count": 3}, "training"),
        "two": ({"label": "b"}, "control"),
        "three": (None, None),
    }


def test_tsv_gold_as_a_json_column(world, project, tmp_path):
    _import(
        world,
        project,
        tmp_path,
        'text\tgold\tgold_kind\none\t{"label": "c", "tags": []}\tcontrol\ntwo\t\t\n',
        "tsv",
    )
    assert _gold(world, project.id) == {
        "one": ({"label": "c", "tags": []}, "control"),
        "two": (None, None),
    }


def test_jsonl_gold_kind(world, project, tmp_path):
    _import(
        world,
        project,
        tmp_path,
        '{"data": {"text": "one"}, "gold": {"label": "a"}, "gold_kind": "training"}\n'
        '{"text": "two", "gold": {"label": "b"}}\n',
        "jsonl",
    )
    assert _gold(world, project.id) == {
        "one": ({"label": "a"}, "training"),
        "two": ({"label": "b"}, "control"),
    }


def test_doccano_csv_carries_gold(world, tmp_path):
    project = world.project(
        world.workspace(),
        schema={"fields": [{"name": "label", "type": "choice", "options": ["pos", "neg"]}]},
    )
    _import(
        world,
        project,
        tmp_path,
        "text,label,gold.label,gold_kind\nfine,,pos,training\n",
        "doccano-csv",
    )
    assert _gold(world, project.id) == {"fine": ({"label": "pos"}, "training")}


def test_bad_gold_cells_are_located(world, project, tmp_path):
    body = (
        "text,gold.label,gold.count,gold_kind\n"
        "one,a,3,practice\n"  # unknown kind
        "two,d,,\n"  # not an option
        "three,a,many,\n"  # not a number
        "four,,,training\n"  # a kind without an answer
    )
    assert _problems(world, project, tmp_path, body, "csv") == [
        {"location": "line 2", "field": "gold_kind"},
        {"location": "line 3", "field": "gold.label"},
        {"location": "line 4", "field": "gold.count"},
        {"location": "line 5", "field": "gold_kind"},
    ]


def test_bad_gold_headers_are_refused(world, project, tmp_path):
    body = 'text,gold,gold.label,gold.colour\none,"{""label"": ""a""}",a,red\n'
    assert _problems(world, project, tmp_path, body, "csv") == [
        {"location": "line 1", "field": "gold"},
        {"location": "line 1", "field": "gold.colour"},
    ]
    with world.db.begin("read") as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM items")).scalar_one() == 0

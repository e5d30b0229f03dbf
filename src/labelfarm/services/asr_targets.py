"""The books of speech-recognition pre-fill (the ``asr`` job, :mod:`labelfarm.jobs.asr_jobs`):
what a request may ask, which items are still to transcribe, and writing the transcripts.

**A request** names the ``segments`` field to fill (default: the schema's only one) and
optionally a language tag for every item (else each item's data ``language``, else the
language the model detects). When the field lists its languages, a tag is kept only if it is
one of them or shares its language with one (``en`` -> ``en-IN``); otherwise the segments
carry no tag.

**Which items.** The project's ready items with a stored media file (or those asked for)
that have no ``asr`` prediction of the configured model yet: a job that runs again after a
crash, or again later, takes up where it stopped.

**Writing.** A prediction has ``model = "asr"``, ``model_version`` = the model's name
(``LABELFARM_ASR_MODEL_NAME``), the field's segments as its value and the mean word
probability as its score. Each batch is one short write that replaces the items' older
``asr`` predictions (of any model version) and inserts the new ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import dumps
from labelfarm.schema import FieldType
from labelfarm.services.models.predictions import count_of, page_of
from labelfarm.services.projects import Project

MODEL = "asr"
FIELD_TYPE = "segments"
TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
MAX_TAG = 35


class AsrTarget(NamedTuple):
    id: int
    data: str
    media_sha256: str
    size: int | None  # bytes of the stored file
    duration: float | None  # seconds, when the import derived it


class Transcript(NamedTuple):
    item_id: int
    value: dict[str, Any]
    score: float | None


_TARGET = (
    "FROM items i LEFT JOIN media m ON m.sha256 = i.media_sha256 "
    "LEFT JOIN media_audio ma ON ma.sha256 = i.media_sha256 "
    "WHERE i.project_id = :p AND i.status = 'ready' AND i.media_sha256 IS NOT NULL "
    "AND i.id > :after AND NOT EXISTS (SELECT 1 FROM predictions pr WHERE pr.item_id = i.id "
    "AND pr.model = :m AND pr.model_version = :v)"
)
_COLUMNS = "SELECT i.id, i.data, i.media_sha256, m.size, ma.duration "
TARGETS = Sql(f"{_COLUMNS}{_TARGET} ORDER BY i.id LIMIT :n", row=AsrTarget)
CHOSEN = Sql(f"{_COLUMNS}{_TARGET} AND i.id IN :ids ORDER BY i.id LIMIT :n", row=AsrTarget)
COUNT = Sql(f"SELECT COUNT(*) {_TARGET}")
COUNT_CHOSEN = Sql(f"SELECT COUNT(*) {_TARGET} AND i.id IN :ids")
REPLACE = Sql("DELETE FROM predictions WHERE item_id IN :ids AND model = :m")
INSERT = Sql(
    "INSERT INTO predictions (project_id, item_id, model, value, score, created_at, model_version) "
    "VALUES (:p, :i, :m, :value, :score, :now, :v)"
)


# -- the request --------------------------------------------------------------------------------
def segments_field(project: Project, name: Any = None) -> FieldType:
    """The ``segments`` field a request fills: the one named, else the schema's only one."""
    fields = [f for f in project.schema.fields if f.type_name == FIELD_TYPE]
    if name is not None:
        found = project.schema.by_name.get(name) if isinstance(name, str) else None
        if found is None or found.type_name != FIELD_TYPE:
            raise InvalidInput(
                f"field {name!r} is not a segments field of this project; segments fields: "
                f"{[f.name for f in fields]}",
                [{"field": "field", "reason": "not a segments field"}],
            )
        return found
    if len(fields) != 1:
        reason = "no segments field" if not fields else "several segments fields: name one"
        raise InvalidInput(
            f"speech recognition fills a segments field; this project has {reason}",
            [{"field": "field", "reason": reason}],
        )
    return fields[0]


def field_languages(field: FieldType) -> list[str]:
    """The language tags the field allows (empty: any)."""
    listed = getattr(field, "languages", None) or []
    return [str(t) for t in listed]


def check_language(field: FieldType, tag: Any) -> str | None:
    """The request's language tag, checked (None: each item's own, else detected)."""
    if tag is None:
        return None
    if not isinstance(tag, str) or len(tag) > MAX_TAG or not TAG.match(tag):
        raise InvalidInput(
            f"language {tag!r} is not a language tag such as en, ta-IN or ta-IN-madurai",
            [{"field": "language", "reason": "not a language tag"}],
        )
    allowed = field_languages(field)
    if allowed and tag not in allowed:
        raise InvalidInput(
            f"language {tag!r} is not one of field {field.name!r}'s languages: {allowed}",
            [{"field": "language", "reason": "not a language of the field"}],
        )
    return tag


def check_request(project: Project, params: dict[str, Any]) -> tuple[FieldType, str | None]:
    """The field and language of an ``asr`` request (its ``items`` are checked by the route)."""
    field = segments_field(project, params.get("field"))
    return field, check_language(field, params.get("language"))


def item_language(data: dict[str, Any]) -> str | None:
    """The language tag an item's data gives (its ``language`` key), when it is one."""
    tag = data.get("language")
    if isinstance(tag, str) and len(tag) <= MAX_TAG and TAG.match(tag):
        return tag
    return None


def fit_tag(tag: str | None, allowed: Sequence[str]) -> str | None:
    """``tag`` as the field can hold it: itself when the field allows any tag or lists it,
    else the first listed tag of the same language (``en`` -> ``en-IN``), else None."""
    if tag is None or not allowed or tag in allowed:
        return tag
    primary = tag.split("-", 1)[0].lower()
    return next((t for t in allowed if t.split("-", 1)[0].lower() == primary), None)


# -- the items ----------------------------------------------------------------------------------
def _params(project_id: int, model_name: str, after: int) -> dict[str, Any]:
    return {"p": project_id, "m": MODEL, "v": model_name, "after": after}


@transaction("read")
def count_targets(
    tx: CoreTx, project_id: int, model_name: str, item_ids: Sequence[int] | None = None
) -> int:
    """How many items the model has still to transcribe."""
    return count_of(tx, (COUNT, COUNT_CHOSEN), _params(project_id, model_name, 0), item_ids)


@transaction("read")
def next_targets(
    tx: CoreTx,
    project_id: int,
    model_name: str,
    *,
    after: int,
    n: int,
    item_ids: Sequence[int] | None = None,
) -> list[AsrTarget]:
    """The next ``n`` items (by id, after ``after``) still to transcribe."""
    params = {**_params(project_id, model_name, after), "n": n}
    return page_of(tx, (TARGETS, CHOSEN), params, item_ids)


@transaction("write")
def write_transcripts(
    tx: CoreTx, project_id: int, model_name: str, rows: Sequence[Transcript], now: float
) -> int:
    """Store a batch of transcripts, replacing the items' older ``asr`` predictions."""
    if not rows:
        return 0
    tx.run(REPLACE, {"ids": [r.item_id for r in rows], "m": MODEL})
    tx.many(
        INSERT,
        [
            {
                "p": project_id,
                "i": r.item_id,
                "m": MODEL,
                "value": dumps(r.value),
                "score": r.score,
                "now": now,
                "v": model_name,
            }
            for r in rows
        ],
    )
    return len(rows)

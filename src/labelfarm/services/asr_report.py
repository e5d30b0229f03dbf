"""The word error rate of ASR pre-fill per language tag over time, as the quality page and
``GET /api/v1/projects/{id}/asr/quality`` show it.

Per tag: the switch's state and the evidence behind it (:func:`asr_quality.prefill_state`),
each model version's measurements — in shadow (transcribed without the pre-fill: the fair
measure, the one the switch uses) and pre-filled (post-edited: biased towards the pre-fill,
shown for comparison) — and the shadow WER per day (UTC) over the last :data:`DAYS` days.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from labelfarm.db.dialect import Dialect
from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.jsonutil import iso
from labelfarm.services import asr_quality
from labelfarm.services.projects import Project

DAYS = 60  # days of the per-day series
DAY = 86_400.0
MAX_TAGS = 100  # tags shown, the most measured first
MAX_VERSIONS = 20  # versions shown per tag, newest first


class _Version(NamedTuple):
    language: str
    model_version: str
    shadow: bool
    items: int
    words: int
    errors: int
    n: int
    first: float
    last: float


class _Day(NamedTuple):
    language: str
    day: int
    items: int
    words: int
    errors: int


_COUNTS = (
    "COUNT(DISTINCT CASE WHEN words > 0 THEN item_id END), COALESCE(SUM(words), 0), "
    "COALESCE(SUM(errors), 0)"
)
VERSIONS = Sql(
    f"SELECT language, model_version, shadow, {_COUNTS}, COUNT(*), MIN(measured_at), "
    "MAX(measured_at) FROM asr_measurements WHERE project_id = :p "
    "GROUP BY language, model_version, shadow",
    row=_Version,
)


def _days(day: str) -> Sql[_Day]:
    return Sql(
        f"SELECT language, {day} AS d, {_COUNTS} FROM asr_measurements "
        "WHERE project_id = :p AND shadow = :yes AND measured_at >= :since "
        "GROUP BY language, d",
        row=_Day,
    )


DAYS_BY_DIALECT = {  # the UTC day number of a time: floored, on each database
    Dialect.SQLITE: _days("CAST(measured_at / 86400 AS INTEGER)"),
    Dialect.POSTGRESQL: _days("CAST(FLOOR(measured_at / 86400) AS INTEGER)"),
}


def has_transcripts(project: Project) -> bool:
    """Whether the project's schema has a segments field (ASR pre-fill applies)."""
    return any(f.type_name == "segments" for f in project.schema.fields)


def _counts(items: int, words: int, errors: int) -> dict[str, Any]:
    return {
        "items": int(items),
        "words": int(words),
        "errors": int(errors),
        "wer": round(errors / words, 6) if words else None,
    }


@transaction("read")
def asr_quality_report(tx: Tx, project: Project, now: float) -> dict[str, Any]:
    """The project's ASR pre-fill measured per tag (see the module text)."""
    states = asr_quality.prefill_state(tx, project, fresh=True)
    tags: dict[str, dict[str, Any]] = {}
    for r in tx.rows(VERSIONS, {"p": project.id}):
        tag = tags.setdefault(r.language, {"language": r.language, "versions": {}, "n": 0})
        tag["n"] += int(r.n)
        v = tag["versions"].setdefault(
            r.model_version,
            {"model_version": r.model_version, "first": r.first, "last": r.last,
             "shadow": _counts(0, 0, 0), "prefilled": _counts(0, 0, 0)},
        )  # fmt: skip
        v["first"], v["last"] = min(v["first"], r.first), max(v["last"], r.last)
        v["shadow" if r.shadow else "prefilled"] = _counts(r.items, r.words, r.errors)
    since = (int(now // DAY) - DAYS + 1) * DAY
    days: dict[str, list[dict[str, Any]]] = {}
    for d in tx.rows(DAYS_BY_DIALECT[tx.dialect], {"p": project.id, "yes": True, "since": since}):
        day = datetime.fromtimestamp(int(d.day) * DAY, UTC).date().isoformat()
        days.setdefault(d.language, []).append({"day": day, **_counts(d.items, d.words, d.errors)})
    out = []
    for tag in sorted(tags.values(), key=lambda t: (-t["n"], t["language"]))[:MAX_TAGS]:
        language = tag["language"]
        versions = sorted(tag["versions"].values(), key=lambda v: v["first"], reverse=True)
        state = states.get(language)
        out.append(
            {
                "language": language,
                "state": state.to_dict() if state else _unmeasured(language, project),
                "versions": [
                    {**v, "first": iso(v["first"]), "last": iso(v["last"])}
                    for v in versions[:MAX_VERSIONS]
                ],
                "days": sorted(days.get(language, []), key=lambda d: d["day"]),
            }
        )
    return {
        "threshold": project.asr_wer_threshold,
        "shadow_share": project.asr_shadow_share,
        "min_words": asr_quality.MIN_WORDS,
        "min_items": asr_quality.MIN_ITEMS,
        "days": DAYS,
        "tags": out,
    }


def _unmeasured(language: str, project: Project) -> dict[str, Any]:
    """The state of a tag measured only with pre-fill shown (nothing in shadow yet): on."""
    return asr_quality.PrefillState(
        language, True, None, None, 0, 0, "too_little_evidence", project.asr_wer_threshold
    ).to_dict()

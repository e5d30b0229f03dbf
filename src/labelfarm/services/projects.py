"""Projects: schema (versioned), workflow settings, progress."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import IntegrityError

from labelfarm.db.tables import (
    annotations,
    assignments,
    items,
    predictions,
    projects,
    schema_versions,
)
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.schema import Schema, compile_schema, parse_schema_text
from labelfarm.services import audit
from labelfarm.services.jsonutil import dumps, loads

ORDERINGS = ("fifo", "priority")


def _whole(lo: int, hi: int) -> Any:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _real(lo: float, hi: float) -> Any:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


# Workflow and quality settings: name -> (check, what is valid, default)
RULES: dict[str, tuple[Any, str, Any]] = {
    "overlap": (_whole(1, 100), "a whole number from 1 to 100", 1),
    "lease_seconds": (_whole(10, 30 * 86400), "seconds from 10 to 2,592,000", 600),
    "ordering": (lambda v: v in ORDERINGS, f"one of {list(ORDERINGS)}", "fifo"),
    "gold_rate": (_real(0, 1), "a share of tasks from 0 to 1", 0.0),
    "qualification_n": (_whole(0, 1000), "gold items to pass first (0: none)", 0),
    "qualification_pass": (_real(0, 1), "the mean gold score to pass, from 0 to 1", 0.8),
    "training": (lambda v: isinstance(v, bool), "true or false", False),
    "accuracy_floor": (_real(0, 1), "gold accuracy below which to pause (0: never)", 0.0),
    "max_overlap": (_whole(0, 100), "most labels per item with adaptive overlap (0: off)", 0),
    "target_confidence": (_real(0.5, 1), "label confidence to stop at, 0.5 to 1", 0.9),
}
TEXTS = ("name", "description", "guidelines")
SETTINGS = (*TEXTS, *RULES)


@dataclass(frozen=True, slots=True)
class Project:
    """What the hot path needs to know about a project."""

    id: int
    workspace_id: int
    name: str
    schema_version: int
    overlap: int
    lease_seconds: int
    ordering: str
    schema: Schema
    has_predictions: bool = False
    gold_rate: float = 0.0
    qualification_n: int = 0
    qualification_pass: float = 0.8
    training: bool = False
    accuracy_floor: float = 0.0
    max_overlap: int = 0
    target_confidence: float = 0.9
    guidelines: str = ""

    @property
    def adaptive(self) -> bool:
        """Adaptive overlap: ``overlap`` labels at least, up to ``max_overlap``."""
        return self.max_overlap > self.overlap

    @property
    def open_params(self) -> dict[str, Any]:
        """The parameters of :func:`open_expr` for this project."""
        return open_params(self.overlap, self.max_overlap, self.target_confidence)

    @property
    def needs_standing(self) -> bool:
        """Whether annotators' standing (qualification, pause) gates their work."""
        return self.qualification_n > 0 or self.accuracy_floor > 0


def _check_settings(values: dict[str, Any]) -> None:
    problems = [
        {"field": k, "reason": RULES[k][1]}
        for k, v in values.items()
        if k in RULES and not RULES[k][0](v)
    ]
    if (
        not problems
        and values.get("max_overlap", 0)
        and values["max_overlap"] < values.get("overlap", 1)
    ):
        problems.append(
            {"field": "max_overlap", "reason": "must be 0 (off) or at least the overlap"}
        )
    if problems:
        raise InvalidInput("invalid project settings", problems)


def _schema_dict(schema: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(schema, str):
        return parse_schema_text(schema)
    Schema(schema)  # validates; raises SchemaError naming the field
    return schema


def create_project(
    conn: Connection,
    *,
    workspace_id: int,
    name: str,
    schema: dict[str, Any] | str,
    now: float,
    actor_id: int | None,
    description: str = "",
    guidelines: str = "",
    **settings: Any,
) -> dict[str, Any]:
    """A new project; ``settings`` are workflow and quality settings (see ``RULES``)."""
    if not name or not name.strip():
        raise InvalidInput("a project needs a name", [{"field": "name"}])
    unknown = set(settings) - set(RULES)
    if unknown:
        raise InvalidInput(
            f"unknown setting(s) {sorted(unknown)}; valid: {sorted(RULES)}",
            [{"field": k, "reason": "unknown setting"} for k in sorted(unknown)],
        )
    values = {k: settings.get(k, default) for k, (_c, _w, default) in RULES.items()}
    _check_settings(values)
    raw = _schema_dict(schema)
    try:
        pid = conn.execute(
            projects.insert()
            .values(
                workspace_id=workspace_id,
                name=name,
                description=description,
                guidelines=guidelines,
                schema_version=1,
                **values,
                created_at=now,
                updated_at=now,
            )
            .returning(projects.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"a project named {name!r} exists", [{"field": "name"}]) from None
    conn.execute(
        schema_versions.insert().values(
            project_id=pid, version=1, schema=dumps(raw), created_at=now
        )
    )
    audit.record(
        conn,
        action="project.create",
        target=f"project:{pid}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"name": name},
    )
    return get_project_dict(conn, pid)


def load_project(conn: Connection, project_id: int) -> Project:
    row = (
        conn.execute(
            select(projects, schema_versions.c.schema)
            .select_from(
                projects.join(
                    schema_versions,
                    (schema_versions.c.project_id == projects.c.id)
                    & (schema_versions.c.version == projects.c.schema_version),
                )
            )
            .where(projects.c.id == project_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no project {project_id}")
    return Project(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        schema_version=row["schema_version"],
        overlap=row["overlap"],
        lease_seconds=row["lease_seconds"],
        ordering=row["ordering"],
        schema=compile_schema(row["schema"]),
        gold_rate=row["gold_rate"],
        qualification_n=row["qualification_n"],
        qualification_pass=row["qualification_pass"],
        training=bool(row["training"]),
        accuracy_floor=row["accuracy_floor"],
        max_overlap=row["max_overlap"],
        target_confidence=row["target_confidence"],
        guidelines=row["guidelines"],
        has_predictions=conn.execute(
            select(predictions.c.id).where(predictions.c.project_id == project_id).limit(1)
        ).first()
        is not None,
    )


def get_project_dict(conn: Connection, project_id: int) -> dict[str, Any]:
    row = conn.execute(select(projects).where(projects.c.id == project_id)).mappings().first()
    if row is None:
        raise NotFound(f"no project {project_id}")
    out = dict(row)
    raw = conn.execute(
        select(schema_versions.c.schema).where(
            schema_versions.c.project_id == project_id,
            schema_versions.c.version == row["schema_version"],
        )
    ).scalar_one()
    out["schema"] = loads(raw)
    return out


def list_projects(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(projects).where(projects.c.workspace_id == workspace_id).order_by(projects.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def update_settings(
    conn: Connection, *, project_id: int, changes: dict[str, Any], now: float, actor_id: int | None
) -> dict[str, Any]:
    unknown = set(changes) - set(SETTINGS) - {"schema"}
    if unknown:
        raise InvalidInput(
            f"unknown setting(s) {sorted(unknown)}; valid: {[*SETTINGS, 'schema']}",
            [{"field": k, "reason": "unknown setting"} for k in sorted(unknown)],
        )
    current = get_project_dict(conn, project_id)
    _check_settings({k: changes.get(k, current[k]) for k in RULES})
    values: dict[str, Any] = {k: v for k, v in changes.items() if k in SETTINGS}
    if "schema" in changes:
        raw = _schema_dict(changes["schema"])
        if raw != current["schema"]:
            version = current["schema_version"] + 1
            conn.execute(
                schema_versions.insert().values(
                    project_id=project_id, version=version, schema=dumps(raw), created_at=now
                )
            )
            values["schema_version"] = version
    if not values:
        return current
    values["updated_at"] = now
    conn.execute(projects.update().where(projects.c.id == project_id).values(**values))
    if any(k in values and values[k] != current[k] for k in OPENNESS):
        reopen_items(conn, project_id)
    audit.record(
        conn,
        action="project.settings",
        target=f"project:{project_id}",
        now=now,
        workspace_id=current["workspace_id"],
        actor_id=actor_id,
        details={
            k: {"from": current.get(k), "to": v}
            for k, v in values.items()
            if k not in ("updated_at",)
        },
    )
    return get_project_dict(conn, project_id)


def open_expr(dl: str = "0", ds: str = "0", conf: str = "COALESCE(label_confidence, 0)") -> str:
    """SQL for ``items.is_open`` after changing the counters by ``dl`` and ``ds``.

    Open means: not gold (gold is served by its own path), and either below the minimum
    overlap counting live leases and submissions, or, with adaptive overlap, nothing in
    flight, below ``max_overlap`` and the label's confidence below the target.
    Parameters: ``:overlap``, ``:max_overlap`` (0 when adaptive overlap is off), ``:target``;
    ``conf`` is the confidence to compare (SET clauses see the old column values).
    """
    n = f"(n_leased + {dl} + n_submitted + {ds})"
    return (
        f"(is_gold = false AND ({n} < :overlap OR ((n_leased + {dl}) = 0 AND "
        f"(n_submitted + {ds}) < :max_overlap AND {conf} < :target)))"
    )


# "Not handed to this annotator before". On PostgreSQL, OFFSET 0 keeps it a per-row probe of
# uq_assignments_item_user: flattened into an anti join, a generic plan (the hot connections
# force those, see Database) may instead scan all of the annotator's past assignments, a
# cost that grows with their history.
NOT_MINE = (
    "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = :u)",
    "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = :u OFFSET 0)",
)


OPENNESS = ("overlap", "max_overlap", "target_confidence")


def open_params(overlap: int, max_overlap: int, target: float) -> dict[str, Any]:
    return {
        "overlap": overlap,
        "max_overlap": max_overlap if max_overlap > overlap else 0,
        "target": target,
    }


def reopen_items(conn: Connection, project_id: int) -> None:
    """Recompute which items are open after the overlap settings changed."""
    p = get_project_dict(conn, project_id)
    conn.execute(
        text(
            f"UPDATE items SET is_open = {open_expr()} WHERE project_id = :p AND status = 'ready'"
        ),
        {"p": project_id, **open_params(p["overlap"], p["max_overlap"], p["target_confidence"])},
    )


def progress(conn: Connection, project_id: int, now: float) -> dict[str, Any]:
    """Items by status, annotations, live leases. Off the hot path (indexed aggregates)."""
    project = get_project_dict(conn, project_id)
    overlap = project["overlap"]
    row = conn.execute(
        select(
            func.count().label("total"),
            func.sum((items.c.n_submitted >= overlap).cast(type_=items.c.n_submitted.type)),
            func.sum((items.c.n_submitted > 0).cast(type_=items.c.n_submitted.type)),
            func.sum(items.c.n_submitted),
        ).where(items.c.project_id == project_id, items.c.status == "ready")
    ).one()
    total, done, started, submitted = (int(v or 0) for v in row)
    leased = conn.execute(
        select(func.count())
        .select_from(assignments)
        .where(
            assignments.c.project_id == project_id,
            assignments.c.state == "leased",
            assignments.c.expires_at > now,
        )
    ).scalar_one()
    skipped = conn.execute(
        select(func.count())
        .select_from(assignments)
        .where(assignments.c.project_id == project_id, assignments.c.state == "skipped")
    ).scalar_one()
    n_annotations, n_late, n_annotators = conn.execute(
        select(
            func.count(),
            func.sum((annotations.c.status == "late").cast(type_=annotations.c.id.type)),
            func.count(annotations.c.user_id.distinct()),
        ).where(annotations.c.project_id == project_id)
    ).one()
    return {
        "project_id": project_id,
        "overlap": overlap,
        "items": {
            "total": total,
            "done": done,
            "in_progress": started - done,
            "not_started": total - started,
        },
        "labels_submitted": submitted,
        "labels_needed": total * overlap,
        "live_leases": int(leased),
        "skips": int(skipped),
        "annotations": int(n_annotations or 0),
        "late_annotations": int(n_late or 0),
        "annotators": int(n_annotators or 0),
    }

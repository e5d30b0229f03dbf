"""Projects: schema (versioned), workflow and quality settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from labelfarm.db.project_settings import DEFAULTS, SETTING_NAMES, ProjectSettings, problems
from labelfarm.db.project_settings import from_row as settings_of
from labelfarm.db.tables import (
    annotator_status,
    ml_backends,
    model_versions,
    predictions,
    projects,
    schema_versions,
)
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.formats.labelstudio_config import schema_from_label_config
from labelfarm.jsonutil import dumps, loads
from labelfarm.schema import Schema, compile_schema, parse_schema_text
from labelfarm.services import audit
from labelfarm.services.tasks.openness import OPENNESS, open_params, reopen_items

TEXTS = ("name", "description", "guidelines")
CHANGEABLE = (*TEXTS, *SETTING_NAMES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Project(ProjectSettings):
    """What the services need to know about a project: its settings, and who it is."""

    id: int
    workspace_id: int
    name: str
    schema_version: int
    schema: Schema
    #: tasks look for predictions to pre-fill: the project has some, or a model version or a
    #: model server that may write some at any moment
    has_predictions: bool = False
    #: some annotator is paused or failed here (read with the project, which is cached: a
    #: change of standing drops the project from the cache)
    has_stopped: bool = False
    guidelines: str = ""
    #: the parameters of :func:`~labelfarm.services.tasks.openness.open_expr`, from the settings
    open_params: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        params = open_params(self.overlap, self.max_overlap, self.target_confidence)
        object.__setattr__(self, "open_params", params)

    @property
    def adaptive(self) -> bool:
        """Adaptive overlap: ``overlap`` labels at least, up to ``max_overlap``."""
        return self.max_overlap > self.overlap

    @property
    def needs_standing(self) -> bool:
        """Whether annotators' standing (qualification, training, pause) gates their work."""
        return self.qualification_n > 0 or self.training or self.accuracy_floor > 0

    @property
    def hands_out_gold(self) -> bool:
        """Whether annotators get gold tasks: mixed into the queue, or while qualifying."""
        return self.gold_rate > 0 or self.needs_standing


def _check_settings(values: dict[str, Any]) -> None:
    found = problems(values)
    if found:
        raise InvalidInput("invalid project settings", found)


def _schema_dict(schema: dict[str, Any] | str) -> dict[str, Any]:
    """A schema given as a dict, as YAML or JSON text, or as a Label Studio label config
    (XML text: :func:`labelfarm.formats.labelstudio_config.schema_from_label_config`)."""
    if isinstance(schema, str) and schema.lstrip().startswith("<"):
        return schema_from_label_config(schema)
    if isinstance(schema, str):
        return parse_schema_text(schema)
    Schema(schema)  # validates; raises SchemaError naming the field
    return schema


@transaction("write")
def create_project(
    tx: CoreTx,
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
    """A new project; ``settings`` are workflow and quality settings (see
    :class:`~labelfarm.db.project_settings.ProjectSettings`)."""
    if not name or not name.strip():
        raise InvalidInput("a project needs a name", [{"field": "name"}])
    unknown = set(settings) - set(SETTING_NAMES)
    if unknown:
        raise InvalidInput(
            f"unknown setting(s) {sorted(unknown)}; valid: {sorted(SETTING_NAMES)}",
            [{"field": k, "reason": "unknown setting"} for k in sorted(unknown)],
        )
    values = {**DEFAULTS, **settings}
    _check_settings(values)
    raw = _schema_dict(schema)
    try:
        pid = tx.execute(
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
    tx.execute(
        schema_versions.insert().values(
            project_id=pid, version=1, schema=dumps(raw), created_at=now
        )
    )
    audit.record(
        tx,
        action="project.create",
        target=f"project:{pid}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"name": name},
    )
    return get_project_dict(tx, pid)


@transaction("read")
def load_project(tx: CoreTx, project_id: int) -> Project:
    """What the services need to know of a project (its compiled schema included)."""
    row = (
        tx.execute(
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
    # a project with a model version or a model server may get predictions from a job in
    # another process at any moment: its tasks look for them (one indexed read per next)
    # rather than waiting out this project's time in the server's cache
    has_predictions = any(
        tx.execute(select(t.c.id).where(t.c.project_id == project_id).limit(1)).first()
        for t in (predictions, model_versions, ml_backends)
    )
    has_stopped = tx.execute(
        select(annotator_status.c.user_id)
        .where(
            annotator_status.c.project_id == project_id,
            annotator_status.c.state.in_(("paused", "failed")),
        )
        .limit(1)
    ).first()
    return Project(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        schema_version=row["schema_version"],
        schema=compile_schema(row["schema"]),
        guidelines=row["guidelines"],
        has_predictions=has_predictions,
        has_stopped=has_stopped is not None,
        **settings_of(row),
    )


@transaction("read")
def get_project_dict(tx: CoreTx, project_id: int) -> dict[str, Any]:
    row = tx.execute(select(projects).where(projects.c.id == project_id)).mappings().first()
    if row is None:
        raise NotFound(f"no project {project_id}")
    out = dict(row)
    raw = tx.execute(
        select(schema_versions.c.schema).where(
            schema_versions.c.project_id == project_id,
            schema_versions.c.version == row["schema_version"],
        )
    ).scalar_one()
    out["schema"] = loads(raw)
    return out


@transaction("read")
def list_projects(tx: CoreTx, workspace_id: int) -> list[dict[str, Any]]:
    rows = tx.execute(
        select(projects).where(projects.c.workspace_id == workspace_id).order_by(projects.c.id)
    ).mappings()
    return [dict(r) for r in rows]


@transaction("write")
def update_settings(
    tx: CoreTx, *, project_id: int, changes: dict[str, Any], now: float, actor_id: int | None
) -> dict[str, Any]:
    """Change a project's texts, settings or schema (a new schema version); audited."""
    unknown = set(changes) - set(CHANGEABLE) - {"schema"}
    if unknown:
        raise InvalidInput(
            f"unknown setting(s) {sorted(unknown)}; valid: {[*CHANGEABLE, 'schema']}",
            [{"field": k, "reason": "unknown setting"} for k in sorted(unknown)],
        )
    current = get_project_dict(tx, project_id)
    _check_settings({k: changes.get(k, current[k]) for k in SETTING_NAMES})
    values: dict[str, Any] = {k: v for k, v in changes.items() if k in CHANGEABLE}
    if "schema" in changes:
        raw = _schema_dict(changes["schema"])
        if raw != current["schema"]:
            version = current["schema_version"] + 1
            tx.execute(
                schema_versions.insert().values(
                    project_id=project_id, version=version, schema=dumps(raw), created_at=now
                )
            )
            values["schema_version"] = version
    if not values:
        return current
    values["updated_at"] = now
    tx.execute(projects.update().where(projects.c.id == project_id).values(**values))
    if any(k in values and values[k] != current[k] for k in OPENNESS):
        new = {**current, **values}
        params = open_params(new["overlap"], new["max_overlap"], new["target_confidence"])
        reopen_items(tx, project_id, params)
    audit.record(
        tx,
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
    return get_project_dict(tx, project_id)

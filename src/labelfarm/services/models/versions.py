"""Model versions: one row of ``model_versions`` per trained model of a project.

A version is numbered 1, 2, ... per project when its ``train`` job starts (state
``training``); the job finishes it (``ready``: its model and training set in the model store,
its evaluation on the held-out set) or leaves it ``failed``. A retried job takes up the row it
made before, so no run leaves a version behind; a version whose job ended without finishing
it (its worker died on the last attempt) reads as ``failed``.

A manager promotes a ready version (the one that pre-labels: the ``predict`` job's default,
and the pre-fill annotators see first) or retires one; at most one version of a project is
promoted, and retiring it unpromotes it. Both are audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import Conflict, NotFound
from labelfarm.jsonutil import dumps, iso, loads
from labelfarm.services import audit
from labelfarm.services.projects import Project

STATES = ("training", "ready", "failed", "retired")

_COLUMNS = (
    "mv.id, mv.project_id, mv.version, mv.predictor, mv.params, mv.fields, mv.schema_version, "
    # a version whose job ended without finishing it failed (its worker died on the last run)
    "CASE WHEN mv.state = 'training' AND j.state IN ('done', 'failed', 'cancelled') "
    "THEN 'failed' ELSE mv.state END, mv.promoted, mv.artifact, mv.training_set, "
    "mv.training_sha256, mv.n_train, mv.n_eval, mv.train_seconds, mv.evaluation, mv.job_id, "
    "mv.created_by, mv.created_at, mv.promoted_at"
)
_FROM = "FROM model_versions mv LEFT JOIN jobs j ON j.id = mv.job_id"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One trained model of a project, its parameters, fields and evaluation decoded."""

    id: int
    project_id: int
    version: int
    predictor: str
    params: dict[str, Any]
    fields: list[dict[str, Any]]  # what it predicts: {name, type, options}, as trained
    schema_version: int
    state: str
    promoted: bool
    artifact: str | None
    training_set: str | None
    training_sha256: str | None
    n_train: int
    n_eval: int
    train_seconds: float | None
    evaluation: dict[str, Any] | None
    job_id: int | None
    created_by: int | None
    created_at: float
    promoted_at: float | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ModelVersion:
        values = list(row)
        for i in (4, 5, 15):  # params, fields, evaluation: JSON text
            values[i] = loads(values[i]) if values[i] else None
        values[4] = values[4] or {}
        values[5] = values[5] or []
        values[8] = bool(values[8])
        return cls(*values)

    @property
    def model_version(self) -> str:
        """What its predictions carry as ``model_version``."""
        return str(self.version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: what the API answers (times as ISO-8601 UTC)."""
        out = asdict(self)
        out["created_at"] = iso(self.created_at)
        out["promoted_at"] = iso(self.promoted_at)
        return out


SELECT_ALL = Sql(
    f"SELECT {_COLUMNS} {_FROM} WHERE mv.project_id = :p ORDER BY mv.version",
    row=ModelVersion.from_row,
)
SELECT_ONE = Sql(
    f"SELECT {_COLUMNS} {_FROM} WHERE mv.project_id = :p AND mv.version = :v",
    row=ModelVersion.from_row,
)
SELECT_PROMOTED = Sql(
    f"SELECT {_COLUMNS} {_FROM} WHERE mv.project_id = :p AND mv.promoted",
    row=ModelVersion.from_row,
)
# versions are numbered per project, and one is promoted at a time: writers take turns
LOCK_PROJECT = Sql("SELECT id FROM projects WHERE id = :p", lock="FOR UPDATE")
OF_JOB = Sql("SELECT version FROM model_versions WHERE project_id = :p AND job_id = :j")
NEXT_NUMBER = Sql("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE project_id = :p")
INSERT = Sql(
    "INSERT INTO model_versions (project_id, version, predictor, params, fields, "
    "schema_version, state, promoted, n_train, n_eval, job_id, created_by, created_at) VALUES "
    "(:p, :v, :predictor, :params, :fields, :schema_version, 'training', false, 0, 0, :job, "
    ":by, :now)"
)
RESTART = Sql(
    "UPDATE model_versions SET predictor = :predictor, params = :params, fields = :fields, "
    "schema_version = :schema_version, state = 'training', promoted = false, artifact = NULL, "
    "training_set = NULL, training_sha256 = NULL, n_train = 0, n_eval = 0, "
    "train_seconds = NULL, evaluation = NULL WHERE project_id = :p AND version = :v"
)
FINISH = Sql(
    "UPDATE model_versions SET state = 'ready', artifact = :artifact, "
    "training_set = :training_set, training_sha256 = :sha, n_train = :n_train, "
    "n_eval = :n_eval, train_seconds = :seconds, evaluation = :evaluation "
    "WHERE project_id = :p AND version = :v AND state = 'training'"
)
FAIL = Sql(
    "UPDATE model_versions SET state = 'failed' "
    "WHERE project_id = :p AND version = :v AND state = 'training'"
)
EVALUATED = Sql(
    "UPDATE model_versions SET evaluation = :evaluation, n_eval = :n_eval "
    "WHERE project_id = :p AND version = :v"
)
UNPROMOTE = Sql("UPDATE model_versions SET promoted = false WHERE project_id = :p AND promoted")
PROMOTE = Sql(
    "UPDATE model_versions SET promoted = true, promoted_at = :now "
    "WHERE project_id = :p AND version = :v"
)
RETIRE = Sql(
    "UPDATE model_versions SET state = 'retired', promoted = false "
    "WHERE project_id = :p AND version = :v"
)


@transaction("read")
def list_versions(tx: CoreTx, project_id: int) -> list[ModelVersion]:
    """The project's versions, oldest first."""
    return tx.rows(SELECT_ALL, {"p": project_id})


@transaction("read")
def get_version(tx: CoreTx, project_id: int, version: int) -> ModelVersion:
    found = tx.one(SELECT_ONE, {"p": project_id, "v": version})
    if found is None:
        raise NotFound(f"no model version {version} in this project", [{"field": "version"}])
    return found


@transaction("read")
def promoted_version(tx: CoreTx, project_id: int) -> ModelVersion | None:
    return tx.one(SELECT_PROMOTED, {"p": project_id})


@transaction("write")
def start_training(
    tx: CoreTx,
    project: Project,
    *,
    job_id: int,
    predictor: str,
    params: dict[str, Any],
    fields: list[dict[str, Any]],
    created_by: int | None,
    now: float,
) -> ModelVersion:
    """The version a ``train`` job builds: the one an earlier run of the job made (started
    again from scratch), else a new one numbered after the project's last."""
    tx.run(LOCK_PROJECT, {"p": project.id})
    values = {
        "p": project.id,
        "predictor": predictor,
        "params": dumps(params),
        "fields": dumps(fields),
        "schema_version": project.schema_version,
    }
    mine = tx.one(OF_JOB, {"p": project.id, "j": job_id})
    if mine is not None:
        tx.run(RESTART, {**values, "v": mine[0]})
        return get_version(tx, project.id, mine[0])
    number = tx.one(NEXT_NUMBER, {"p": project.id})
    assert number is not None
    tx.run(INSERT, {**values, "v": int(number[0]), "job": job_id, "by": created_by, "now": now})
    return get_version(tx, project.id, int(number[0]))


@transaction("write")
def finish_training(
    tx: CoreTx,
    project_id: int,
    version: int,
    *,
    artifact: str,
    training_set: str,
    training_sha256: str,
    n_train: int,
    n_eval: int,
    train_seconds: float,
    evaluation: dict[str, Any],
) -> ModelVersion:
    """The version is ready: its files are stored and it was evaluated."""
    tx.run(
        FINISH,
        {
            "p": project_id,
            "v": version,
            "artifact": artifact,
            "training_set": training_set,
            "sha": training_sha256,
            "n_train": n_train,
            "n_eval": n_eval,
            "seconds": train_seconds,
            "evaluation": dumps(evaluation),
        },
    )
    return get_version(tx, project_id, version)


@transaction("write")
def fail_training(tx: CoreTx, project_id: int, version: int) -> None:
    """The run building the version failed (a retry of its job takes it up again)."""
    tx.run(FAIL, {"p": project_id, "v": version})


@transaction("write")
def store_evaluation(
    tx: CoreTx, project_id: int, version: int, evaluation: dict[str, Any], n_eval: int
) -> ModelVersion:
    tx.run(
        EVALUATED,
        {"p": project_id, "v": version, "evaluation": dumps(evaluation), "n_eval": n_eval},
    )
    return get_version(tx, project_id, version)


@transaction("write")
def promote(
    tx: CoreTx, project: Project, version: int, *, now: float, actor_id: int | None
) -> ModelVersion:
    """Make ``version`` the one that pre-labels (the project's previous one steps down)."""
    tx.run(LOCK_PROJECT, {"p": project.id})
    found = get_version(tx, project.id, version)
    if found.state != "ready":
        raise Conflict(
            f"model version {version} is {found.state}: only a ready version can be promoted",
            [{"field": "version", "reason": found.state}],
        )
    before = promoted_version(tx, project.id)
    tx.run(UNPROMOTE, {"p": project.id})
    tx.run(PROMOTE, {"p": project.id, "v": version, "now": now})
    audit.record(
        tx,
        action="model.promote",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={
            "version": version,
            "predictor": found.predictor,
            "previous": before.version if before is not None else None,
        },
    )
    return get_version(tx, project.id, version)


@transaction("write")
def retire(
    tx: CoreTx, project: Project, version: int, *, now: float, actor_id: int | None
) -> ModelVersion:
    """Take ``version`` out of use (unpromoted if it was promoted); its files are kept."""
    tx.run(LOCK_PROJECT, {"p": project.id})
    found = get_version(tx, project.id, version)
    if found.state == "training":
        raise Conflict(
            f"model version {version} is still training: cancel its job first",
            [{"field": "version", "reason": "training"}],
        )
    if found.state == "retired":
        return found
    tx.run(RETIRE, {"p": project.id, "v": version})
    audit.record(
        tx,
        action="model.retire",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={"version": version, "predictor": found.predictor, "was_promoted": found.promoted},
    )
    return get_version(tx, project.id, version)

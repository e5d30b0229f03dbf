"""The audit log: what it records, that it is append-only, and that tampering is found."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from labelfarm.client import LabelfarmAPIError
from labelfarm.services import audit


def _actions(world) -> list[str]:
    with world.db.begin("read") as conn:
        return list(conn.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars())


def test_records_logins_imports_exports_roles_and_settings(world):
    ws = world.workspace()
    admin = world.user("boss", role="admin", workspace=ws, password="long enough pw")
    ann = world.user("ann", role="annotator", workspace=ws)
    project = world.project(ws)
    c = admin["client"]
    c.request("POST", "/auth/login", json={"username": "boss", "password": "long enough pw"})
    c.import_bytes(project.id, b'{"data": {"text": "x"}}\n', format="jsonl")
    b"".join(c.export_stream(project.id))
    c.set_role(ws["id"], ann["id"], "reviewer")
    c.update_project(project.id, overlap=2)
    acts = _actions(world)
    for expected in ("login", "import", "export", "role.set", "project.settings"):
        assert expected in acts
    with world.db.begin("read") as conn:
        detail = conn.execute(
            text("SELECT details FROM audit_log WHERE action = 'project.settings'")
        ).scalar_one()
    assert '"overlap"' in detail and '"from":1' in detail and '"to":2' in detail


def test_failed_login_is_recorded(world):
    world.user("boss", password="long enough pw")
    with pytest.raises(LabelfarmAPIError):
        world.client().request("POST", "/auth/login", json={"username": "boss", "password": "x"})
    world.ctx.tally.flush(world.db, world.clock(), everything=True)  # aggregated, per minute
    assert "login.failed" in _actions(world)


def test_the_database_refuses_updates_and_deletes(world):
    world.workspace()
    with pytest.raises(DBAPIError, match="append-only"), world.db.begin("write") as conn:
        conn.execute(text("UPDATE audit_log SET action = 'x'"))
    with pytest.raises(DBAPIError, match="append-only"), world.db.begin("write") as conn:
        conn.execute(text("DELETE FROM audit_log"))


def _drop_guard(world) -> None:
    """What an attacker with database access does first."""
    with world.db.begin("write") as conn:
        if world.db.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))


@pytest.fixture
def history(world):
    ws = world.workspace()
    for i in range(5):
        world.user(f"u{i}", role="annotator", workspace=ws)
    with world.db.begin("read") as conn:
        result = audit.verify(conn)
    assert result.ok and result.n_rows >= 10
    _drop_guard(world)
    return result.n_rows


def test_verify_finds_an_edited_row(world, history):
    with world.db.begin("write") as conn:
        conn.execute(text("UPDATE audit_log SET target = 'user:999' WHERE id = 4"))
    with world.db.begin("read") as conn:
        result = audit.verify(conn)
    assert not result.ok
    assert result.problems == [{"id": 4, "problem": "row content does not match its hash"}]


def test_verify_finds_a_deleted_row(world, history):
    with world.db.begin("write") as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
    with world.db.begin("read") as conn:
        result = audit.verify(conn)
    assert not result.ok and result.problems[0]["id"] == 3


def test_verify_finds_a_deleted_tail(world, history):
    with world.db.begin("write") as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :n"), {"n": history})
    with world.db.begin("read") as conn:
        result = audit.verify(conn)
    assert not result.ok and "newest rows missing" in result.problems[0]["problem"]


def test_cli_verify_exits_nonzero_on_tampering(world, history, settings, monkeypatch):
    from typer.testing import CliRunner

    from labelfarm.cli import app

    monkeypatch.setenv("LABELFARM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LABELFARM_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    with world.db.begin("write") as conn:
        conn.execute(text("UPDATE audit_log SET action = 'nothing' WHERE id = 2"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "row 2" in result.output

"""The audit chain is keyed and anchored: someone who can write to the database, but holds
neither the audit key nor the anchor's signing key, cannot rewrite or shorten the log without
`audit verify` saying so. Also: the events audited since (logout, exports, failed imports,
refused authorizations in aggregate, CLI actions under the operator's name)."""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from labelfarm.cli import app as cli
from labelfarm.client import LabelfarmAPIError
from labelfarm.db.engine import Database, migrate
from labelfarm.services import audit, audit_anchor, users

PG_URL = os.environ.get("LABELFARM_TEST_DATABASE_URL", "")


# -- what an attacker with database access (and no key) does ------------------------------------
def _drop_guard(db: Database) -> None:
    with db.begin("write") as conn:
        if db.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))


def _content(row: dict[str, Any]) -> bytes:
    """The row content the chain hashes (the published, unkeyed algorithm)."""
    return orjson.dumps(
        [
            row["id"],
            repr(float(row["ts"])),
            row["workspace_id"],
            row["actor_id"],
            row["action"],
            row["target"],
            row["details"],
            row["prev_hash"],
        ]
    )


def sha256_digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(_content(row)).hexdigest()


def hmac_with(key: bytes):
    return lambda row: hmac.new(key, _content(row), hashlib.sha256).hexdigest()


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.begin("read") as conn:
        return [
            dict(r) for r in conn.execute(text("SELECT * FROM audit_log ORDER BY id")).mappings()
        ]


def _rewrite(db, rows, *, start: int, digest, scheme: int, edit=None) -> None:
    """Rehash rows from id ``start`` on (after ``edit``), chained, and move the head."""
    prev = None
    changed = []
    for row in rows:
        if row["id"] >= start:
            if edit is not None:
                edit(row)
            row["prev_hash"] = prev if prev is not None else row["prev_hash"]
            row["hash"], row["scheme"] = digest(row), scheme
            changed.append(row)
        prev = row["hash"]
    with db.begin("write") as conn:
        for row in changed:
            conn.execute(
                text(
                    "UPDATE audit_log SET details = :details, prev_hash = :prev_hash, "
                    "hash = :hash, scheme = :scheme WHERE id = :id"
                ),
                row,
            )
        conn.execute(
            text("UPDATE audit_head SET last_id = :id, hash = :hash WHERE id = 1"), rows[-1]
        )


def _truncate_to(db: Database, last_id: int) -> None:
    """Delete the newest rows and move the head back to the last one kept."""
    with db.begin("write") as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > :n"), {"n": last_id})
        kept = conn.execute(text("SELECT hash FROM audit_log WHERE id = :n"), {"n": last_id})
        conn.execute(
            text("UPDATE audit_head SET last_id = :n, hash = :h WHERE id = 1"),
            {"n": last_id, "h": kept.scalar_one()},
        )


def _verify(db: Database, anchors=(), public_key: bytes | None = None):
    if anchors:
        return db.run(audit_anchor.verify_anchored, list(anchors), public_key)
    return db.run(audit.verify)


@pytest.fixture
def history(world):
    ws = world.workspace()
    for i in range(6):
        world.user(f"u{i}", role="annotator", workspace=ws)
    result = _verify(world.db)
    assert result.ok and result.n_rows >= 12 and result.n_unkeyed == 0
    return ws


@pytest.fixture
def keys():
    return audit_anchor.generate_key_pair()


# -- the key --------------------------------------------------------------------------------
def test_rows_are_hashed_with_the_key_not_with_plain_sha256(world, history):
    rows = _rows(world.db)
    key = world.ctx.settings.resolved_audit_key
    assert all(r["scheme"] == 1 and r["hash"] == hmac_with(key)(r) for r in rows)
    assert all(r["hash"] != sha256_digest(r) for r in rows)
    key_file = world.ctx.settings.data_dir / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes().strip() == key
    assert key != world.ctx.settings.resolved_secret_key


def test_rehashing_every_row_without_the_key_is_found(world, history):
    _drop_guard(world.db)
    rows = _rows(world.db)
    # every row recomputed with the plain digest and marked as written before the key
    _rewrite(world.db, rows, start=1, digest=sha256_digest, scheme=0)
    result = _verify(world.db)
    assert not result.ok
    assert any("no keyed row follows" in p["problem"] for p in result.problems)
    # left marked as keyed: no hash fits
    _rewrite(world.db, _rows(world.db), start=1, digest=sha256_digest, scheme=1)
    result = _verify(world.db)
    assert not result.ok and len(result.problems) == len(rows)


def test_an_edit_rehashed_with_a_wrong_key_is_found(world, history):
    _drop_guard(world.db)
    rows = _rows(world.db)

    def edit(row):
        if row["id"] == 4:
            row["details"] = '{"username":"someone else"}'

    _rewrite(world.db, rows, start=4, digest=hmac_with(b"a guess"), scheme=1, edit=edit)
    result = _verify(world.db)
    assert not result.ok
    bad = [
        p["id"] for p in result.problems if p["problem"] == "row content does not match its hash"
    ]
    assert bad == list(range(4, len(rows) + 1))


def test_a_row_after_the_switch_cannot_be_downgraded_to_the_plain_digest(world, history):
    _drop_guard(world.db)
    rows = _rows(world.db)
    n = len(rows)

    def edit(row):
        if row["id"] == n:
            row["details"] = '{"forged":true}'

    _rewrite(world.db, rows, start=n, digest=sha256_digest, scheme=0, edit=edit)
    result = _verify(world.db)
    assert not result.ok
    assert result.problems == [
        {"id": n, "problem": "row hashed without the key after the chain was keyed"}
    ]


# -- anchors --------------------------------------------------------------------------------
def test_deleting_the_newest_rows_and_moving_the_head_is_caught_by_an_anchor(world, history, keys):
    private, public = keys
    anchor = world.db.run(audit_anchor.anchor_head, private, now=world.clock())
    assert anchor["last_id"] == anchor["rows"] == len(_rows(world.db)) - 1  # then recorded
    assert _verify(world.db, [anchor], public).ok
    world.user("later", role="annotator", workspace=history)
    assert _verify(world.db, [anchor], public).ok  # the chain goes on past it
    _drop_guard(world.db)
    _truncate_to(world.db, anchor["last_id"] - 3)
    assert _verify(world.db).ok  # the shorter chain is whole: only the anchor tells
    result = _verify(world.db, [anchor], public)
    assert not result.ok
    assert result.problems[0]["id"] == anchor["last_id"]
    assert "the newest rows were deleted" in result.problems[0]["problem"]
    # the server writes on: the anchored id is back, with another hash
    world.user("after", role="annotator", workspace=history)
    world.user("after2", role="annotator", workspace=history)
    world.user("after3", role="annotator", workspace=history)
    result = _verify(world.db, [anchor], public)
    assert not result.ok
    assert {
        "id": anchor["last_id"],
        "problem": "the anchored row's hash differs from the anchor's",
    } in result.problems


def test_an_anchor_whose_content_or_signature_was_changed_is_refused(world, history, keys):
    private, public = keys
    anchor = world.db.run(audit_anchor.anchor_head, private, now=world.clock())
    _drop_guard(world.db)
    _truncate_to(world.db, anchor["last_id"] - 2)
    # moving the anchor back to fit the shorter chain breaks its signature
    moved = {**anchor, "last_id": anchor["last_id"] - 2, "hash": _rows(world.db)[-1]["hash"]}
    result = _verify(world.db, [moved], public)
    assert not result.ok
    assert "signature does not verify" in result.problems[0]["problem"]
    sig = bytearray(base64.b64decode(anchor["signature"]))
    sig[0] ^= 1
    flipped = {**anchor, "signature": base64.b64encode(bytes(sig)).decode()}
    key = audit_anchor.load_public_key(public)
    assert audit_anchor.check_anchor(anchor, key) == []
    assert audit_anchor.check_anchor(flipped, key) != []
    assert audit_anchor.check_anchor({**anchor, "rows": anchor["rows"] + 1}, key) != []


def test_an_anchor_checked_with_another_public_key_is_refused(world, history, keys):
    private, _public = keys
    _other_private, other_public = audit_anchor.generate_key_pair()
    anchor = world.db.run(audit_anchor.anchor_head, private, now=world.clock())
    result = _verify(world.db, [anchor], other_public)
    assert not result.ok and result.anchors == [
        {"anchor": 1, "last_id": anchor["last_id"], "signature_ok": False}
    ]


def test_the_cli_makes_keys_signs_anchors_and_verifies_them(world, history, env, tmp_path):
    runner = CliRunner()
    prefix = tmp_path / "ops"
    r = runner.invoke(cli, ["audit", "keygen", str(prefix)])
    assert r.exit_code == 0, r.output
    private, public = Path(f"{prefix}.pem"), Path(f"{prefix}.pub.pem")
    assert private.stat().st_mode & 0o777 == 0o600
    out = tmp_path / "anchor.json"
    r = runner.invoke(cli, ["audit", "anchor", "--key", str(private), "--out", str(out)])
    assert r.exit_code == 0, r.output
    anchor = orjson.loads(out.read_bytes())
    assert anchor["format"] == "labelfarm-audit-anchor/1"
    assert anchor["key_id"].startswith("ed25519:")
    check = ["audit", "verify", "--anchor", str(out), "--public-key", str(public)]
    r = runner.invoke(cli, check)
    assert r.exit_code == 0 and "rows/s" in r.output, r.output
    _drop_guard(world.db)
    _truncate_to(world.db, anchor["last_id"] - 1)
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0
    r = runner.invoke(cli, check)
    assert r.exit_code == 1 and f"row {anchor['last_id']}" in r.output


def test_the_latest_anchor_can_be_downloaded_by_a_client(world, history, keys):
    private, public = keys
    client = world.user("cl", role="client", workspace=history)["client"]
    with pytest.raises(LabelfarmAPIError) as missing:
        client.request("GET", f"/workspaces/{history['id']}/audit/anchor")
    assert missing.value.status == 404
    anchor = world.db.run(audit_anchor.anchor_head, private, now=world.clock())
    got = client.request("GET", f"/workspaces/{history['id']}/audit/anchor")
    assert got == anchor
    assert audit_anchor.check_anchor(got, audit_anchor.load_public_key(public)) == []
    annotator = world.user("an", role="annotator", workspace=history)["client"]
    with pytest.raises(LabelfarmAPIError) as refused:
        annotator.request("GET", f"/workspaces/{history['id']}/audit/anchor")
    assert refused.value.status == 403


# -- a chain begun before the key: sealed by the upgrade ---------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not PG_URL:
        pytest.skip("LABELFARM_TEST_DATABASE_URL is not set")
    url = make_url(PG_URL)
    admin = f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username} " + (
        f"dbname={url.database}"
    )
    name = f"labelfarm_audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _old_rows(db: Database, n: int) -> None:
    """Rows as the release before the keyed chain wrote them (plain SHA-256)."""
    prev = audit.GENESIS
    with db.engine.begin() as conn:
        for i in range(1, n + 1):
            row = {
                "id": i,
                "ts": 1_700_000_000.0 + i,
                "workspace_id": None,
                "actor_id": None,
                "action": "login",
                "target": f"user:{i}",
                "details": "{}",
                "prev_hash": prev,
            }
            row["hash"] = prev = sha256_digest(row)
            conn.execute(
                text(
                    "INSERT INTO audit_log (id, ts, workspace_id, actor_id, action, target, "
                    "details, prev_hash, hash) VALUES (:id, :ts, :workspace_id, :actor_id, "
                    ":action, :target, :details, :prev_hash, :hash)"
                ),
                row,
            )
        conn.execute(
            text("INSERT INTO audit_head (id, last_id, hash) VALUES (1, :n, :h)"),
            {"n": n, "h": prev},
        )


def test_a_chain_begun_before_the_key_verifies_once_sealed(fresh_url):
    db = Database(fresh_url)
    try:
        migrate(db, "0007")
        _old_rows(db, 5)
        with pytest.raises(RuntimeError, match="no key was given"):
            migrate(db)  # the upgrade seals the old rows: it needs the key
        audit.use_key(db, b"the instance's audit key")
        migrate(db)
        db.run(users.register, username="new", password=None, now=1_800_000_000.0)
        result = db.run(audit.verify)
        assert result.ok, result.problems
        assert (result.n_rows, result.n_unkeyed) == (7, 5)
        rows = _rows(db)
        assert [r["scheme"] for r in rows] == [0] * 5 + [1, 1]
        assert rows[5]["action"] == "audit.keyed" and rows[5]["prev_hash"] == rows[4]["hash"]
        _drop_guard(db)
        # an old row edited and the old rows rehashed: the seal no longer fits
        snapshot = [dict(r) for r in rows]

        def edit(row):
            if row["id"] == 2:
                row["target"] = "user:99"

        _rewrite(db, rows[:5], start=2, digest=sha256_digest, scheme=0, edit=edit)
        with db.begin("write") as conn:  # the head is left where it was
            conn.execute(
                text("UPDATE audit_head SET last_id = :id, hash = :hash WHERE id = 1"),
                snapshot[-1],
            )
        result = db.run(audit.verify)
        assert not result.ok
        assert {"id": 6, "problem": "chain broken before this row"} in result.problems
        # with a wrong key, the keyed rows do not verify
        audit.use_key(db, b"another key")
        assert not db.run(audit.verify).ok
    finally:
        db.dispose()


def test_verify_with_another_key_fails(world, history, env, monkeypatch):
    """Another instance's key: every keyed row fails (the key is what makes a row valid)."""
    monkeypatch.setenv("LABELFARM_AUDIT_KEY", "not this instance's key")
    r = CliRunner().invoke(cli, ["audit", "verify"])
    assert r.exit_code == 1 and "row content does not match its hash" in r.output


# -- the events audited -------------------------------------------------------------------------
def _actions(world) -> list[dict[str, Any]]:
    rows = _rows(world.db)
    for r in rows:
        r["details"] = orjson.loads(r["details"])
    return rows


def test_logout_is_recorded_with_the_user(world):
    user = world.user("boss", password="long enough pw 1")
    c = world.client()
    session = c.request(
        "POST", "/auth/login", json={"username": "boss", "password": "long enough pw 1"}
    )
    c.request("POST", "/auth/logout", headers={"X-CSRF-Token": session["csrf_token"]})
    logouts = [r for r in _actions(world) if r["action"] == "logout"]
    assert [(r["actor_id"], r["target"]) for r in logouts] == [(user["id"], f"user:{user['id']}")]


def test_exports_are_recorded_with_format_and_counts(world, tmp_path):
    ws = world.workspace()
    manager = world.user("mgr", role="manager", workspace=ws)
    client = world.user("cl", role="client", workspace=ws)
    project = world.project(ws)
    world.add_items(project, 7, tmp_path)
    b"".join(manager["client"].export_stream(project.id, format="jsonl"))
    b"".join(client["client"].export_stream(project.id, format="csv"))
    exports = [r for r in _actions(world) if r["action"] == "export"]
    assert [(r["actor_id"], r["workspace_id"]) for r in exports] == [
        (manager["id"], ws["id"]),
        (client["id"], ws["id"]),
    ]
    assert [r["details"] for r in exports] == [
        {"format": "jsonl", "items": 7, "annotations": 0},
        {"format": "csv", "items": 7, "annotations": 0},
    ]


def test_failed_and_refused_imports_are_recorded(world):
    ws = world.workspace()
    manager = world.user("mgr", role="manager", workspace=ws)
    project = world.project(ws)
    c = manager["client"]
    with pytest.raises(LabelfarmAPIError):
        c.import_bytes(project.id, b'{"data": {"text": "x"}}\nnot json\n', format="jsonl")
    with pytest.raises(LabelfarmAPIError):
        c.import_bytes(project.id, b"", format="jsonl")
    rows = [r for r in _actions(world) if r["action"].startswith("import")]
    assert [r["action"] for r in rows] == ["import.failed", "import.refused"]
    failed, refused = rows
    assert failed["actor_id"] == manager["id"] and failed["workspace_id"] == ws["id"]
    assert failed["target"] == f"project:{project.id}"
    assert failed["details"]["format"] == "jsonl" and failed["details"]["errors"] == 1
    assert "empty" in refused["details"]["reason"]


def test_refused_authorizations_are_audited_in_aggregate(world):
    ws = world.workspace()
    project = world.project(ws)
    annotator = world.user("an", role="annotator", workspace=ws)
    before = len(_rows(world.db))
    for _ in range(25):
        with pytest.raises(LabelfarmAPIError) as refused:
            annotator["client"].request("GET", f"/projects/{project.id}/items")
        assert refused.value.status == 403
    assert len(_rows(world.db)) == before  # no write per refusal
    world.ctx.tally.flush(world.db, world.clock(), everything=True)
    rows = [r for r in _actions(world) if r["action"] == "authz.refused"]
    assert len(rows) == 1
    assert rows[0]["target"] == "GET /api/v1/projects/{project_id}/items"
    assert (rows[0]["actor_id"], rows[0]["workspace_id"]) == (annotator["id"], ws["id"])
    assert rows[0]["details"]["count"] == 25


def test_annotation_work_writes_no_audit_rows(world, tmp_path):
    ws = world.workspace()
    project = world.project(ws)
    world.add_items(project, 5, tmp_path)
    annotator = world.user("an", role="annotator", workspace=ws)["client"]
    before = len(_rows(world.db))
    for task in annotator.next(project.id, n=5):
        annotator.submit(
            project.id,
            [{"id": uuid.uuid4().hex, "task": task["task"], "value": {"label": "a"}}],
        )
    assert len(_rows(world.db)) == before


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("LABELFARM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LABELFARM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LABELFARM_SECRET_KEY", "test-secret")
    monkeypatch.delenv("LABELFARM_AUDIT_KEY", raising=False)
    monkeypatch.delenv("LABELFARM_OPERATOR", raising=False)
    return settings


def test_cli_actions_are_recorded_under_the_operator(world, env, monkeypatch):
    ops = world.user("ops.lead")
    runner = CliRunner()
    monkeypatch.setenv("LABELFARM_OPERATOR", "ops.lead")
    r = runner.invoke(cli, ["user", "add", "ann", "--password", "a long password 1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--as", "night-shift", "token", "create", "--user", "ann"])
    assert r.exit_code == 0, r.output
    monkeypatch.delenv("LABELFARM_OPERATOR")
    r = runner.invoke(cli, ["token", "create", "--user", "ann", "--name", "two"])
    assert r.exit_code == 0, r.output
    rows = _actions(world)
    created = next(r for r in rows if r["details"].get("username") == "ann")
    assert created["details"]["operator"] == "ops.lead" and created["actor_id"] == ops["id"]
    tokens = [r for r in rows if r["action"] == "token.create" and "operator" in r["details"]]
    assert [t["details"]["operator"] for t in tokens] == ["night-shift", getpass.getuser()]
    assert [t["actor_id"] for t in tokens] == [None, None]  # no labelfarm users of those names
    # a server request does not carry an operator
    assert "operator" not in rows[0]["details"]
    assert _verify(world.db).ok


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long key " * 20])
def test_the_walks_hmac_is_rfc_2104_for_any_key_length(key):
    from labelfarm.services.audit_chain import Hmac

    message = b'[1,"1800000000.0",null,null,"login","user:1","{}","000"]'
    assert Hmac(key).hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_a_client_checks_an_anchor_as_the_docs_say(world, history, keys):
    """The recipe in docs/audit.md, with the standard library's json, not labelfarm's."""
    import json

    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    private, public = keys
    made = world.db.run(audit_anchor.anchor_head, private, now=world.clock(), instance="சென்னை")
    anchor = json.loads(audit_anchor.to_json(made))
    body = {k: v for k, v in anchor.items() if k != "signature"}
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    load_pem_public_key(public).verify(base64.b64decode(anchor["signature"]), signed)

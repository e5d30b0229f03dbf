"""The history of annotators' standing: automatic pauses and failed qualifications are kept
and audited, a resume appends instead of overwriting, clients see roles and pseudonyms (no
user ids), and the pages show the evidence as sentences in the reader's language."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from markupsafe import escape
from sqlalchemy import text
from sqlalchemy.engine import make_url

from labelfarm import i18n
from labelfarm.db.engine import Database, migrate
from labelfarm.jsonutil import dumps, loads
from labelfarm.services import audit
from labelfarm.services.imports import import_items
from labelfarm.services.tasks import entries, lease, submit
from labelfarm.web.background import audit_standing_changes
from labelfarm.web.pages.quality import evidence_text

PG_URL = os.environ.get("LABELFARM_TEST_DATABASE_URL", "")
SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c"]}]}


def _gold(world, project, tmp_path: Path, n: int) -> None:
    rows = [{"data": {"text": f"gold {i}"}, "gold": {"label": "a"}} for i in range(n)]
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_text("".join(dumps(r) + "\n" for r in rows))
    import_items(
        world.db, project, path, "jsonl", media=world.ctx.media, now=world.clock(), user_id=None
    )


def _answer_wrongly(world, project, user, n: int) -> None:
    current = world.load(project.id)
    tasks = world.db.run(lease.next_tasks, current, user["id"], n, world.clock())
    batch = entries.validate_batch(
        current,
        [{"id": uuid.uuid4().hex, "item_id": t["item_id"], "value": {"label": "b"}} for t in tasks],
    )
    world.db.run(submit.submit, current, user["id"], batch, world.clock())


def _standing_audits(world, team) -> list[dict]:
    rows = world.db.run(audit.entries, workspace_id=team["ws"]["id"], limit=1000)
    return [e for e in reversed(rows) if e["action"] == "annotator.standing"]


@pytest.fixture
def paused(world, team, tmp_path: Path):
    """ann-a, paused by the accuracy floor after six wrong gold answers."""
    project = world.project(team["ws"], schema=SCHEMA, gold_rate=1.0, accuracy_floor=0.6)
    _gold(world, project, tmp_path, 8)
    for _ in range(2):
        _answer_wrongly(world, project, team["ann-a"], 3)
    with world.db.begin("read") as conn:
        state = conn.execute(text("SELECT state FROM annotator_status")).scalar_one()
    assert state == "paused"
    return project


def test_an_automatic_pause_is_kept_and_audited(world, team, paused, run_async):
    assert _standing_audits(world, team) == []  # the submit path could not audit it...
    run_async(audit_standing_changes(world.ctx))  # ...the annotate routes do right after
    [entry] = _standing_audits(world, team)
    assert entry["actor_id"] is None and entry["target"] == f"user:{team['ann-a']['id']}"
    details = entry["details"]
    assert (details["by"], details["to"], details["project_id"]) == ("rule", "paused", paused.id)
    assert details["evidence"]["gold_answers"] == 6
    run_async(audit_standing_changes(world.ctx))
    assert len(_standing_audits(world, team)) == 1  # once


def test_a_failed_qualification_is_kept_and_audited(world, team, tmp_path: Path):
    project = world.project(team["ws"], schema=SCHEMA, qualification_n=3, qualification_pass=0.6)
    _gold(world, project, tmp_path, 4)
    _answer_wrongly(world, project, team["ann-b"], 3)
    history = team["manager"]["client"].request(
        "GET", f"/projects/{project.id}/annotators/{team['ann-b']['pseudonym']}/quality"
    )["history"]
    assert [(h["state"], h["by"], h["evidence"]["kind"]) for h in history] == [
        ("failed", None, "qualification")
    ]
    assert _standing_audits(world, team) == []  # not yet: the next manager action audits it first
    team["manager"]["client"].request(
        "PUT", f"/projects/{project.id}/annotators/{team['ann-a']['id']}", json={"state": "paused"}
    )
    audits = _standing_audits(world, team)
    assert [(e["details"].get("by"), e["details"]["to"]) for e in audits] == [
        ("rule", "failed"),
        (None, "paused"),
    ]


def test_a_resume_appends_and_clients_see_roles_not_ids(world, team, paused):
    who, manager = team["ann-a"], team["manager"]
    manager["client"].request(
        "PUT",
        f"/projects/{paused.id}/annotators/{who['id']}",
        json={"state": "active", "reason": "retrained on the guidelines"},
    )
    path = f"/projects/{paused.id}/annotators/{who['pseudonym']}/quality"
    mine = manager["client"].request("GET", path)
    assert [(h["state"], h["by"] and h["by"]["role"]) for h in mine["history"]] == [
        ("active", "manager"),
        ("paused", None),
    ]
    resumed, pause = mine["history"]
    assert pause["evidence"]["gold_answers"] == 6  # the pause's evidence survives the resume
    assert resumed["by"]["user_id"] == manager["id"]  # managers may see who
    assert resumed["reason"] == "retrained on the guidelines"
    assert resumed["evidence"] == {"kind": "manual", "by_role": "manager", "previous": "paused"}

    theirs = team["client"]["client"].request("GET", path)
    assert theirs["history"][0]["by"] == {"role": "manager", "pseudonym": manager["pseudonym"]}
    assert "set_by" not in json.dumps(theirs)
    assert theirs["status"]["evidence"] == {
        "kind": "manual",
        "by_role": "manager",
        "previous": "paused",
    }
    report = team["client"]["client"].request("GET", f"/projects/{paused.id}/quality")
    assert "set_by" not in json.dumps(report)


def _page(world, token: str, path: str) -> str:
    http = httpx.Client(transport=world.transport, base_url="http://testserver")
    response = http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text[:500]
    return response.text


@pytest.mark.parametrize("lang", ["en", "ta", "hi"])
def test_the_pages_show_evidence_as_sentences(world, team, paused, lang):
    who = team["ann-a"]
    cat = i18n.catalogue(lang)
    with world.db.begin("read") as conn:
        evidence = loads(conn.execute(text("SELECT evidence FROM annotator_status")).scalar_one())
    lines = evidence_text(evidence, cat.t)
    assert len(lines) >= 3 and all("{" not in line for line in lines)
    for role in ("manager", "client"):
        token = team[role]["token"]
        for path in (
            f"/projects/{paused.id}/quality?lang={lang}",
            f"/projects/{paused.id}/annotators/{who['pseudonym']}?lang={lang}",
        ):
            body = _page(world, token, path)
            for line in lines:
                assert str(escape(line)) in body, (path, line)
            assert "gold_answers" not in body and "{&#39;" not in body and "{'" not in body
            assert str(escape(cat.t("standing.reason.accuracy_floor.paused"))) in body


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not PG_URL:
        pytest.skip("LABELFARM_TEST_DATABASE_URL is not set")
    url = make_url(PG_URL)
    admin = f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username} "
    admin += f"dbname={url.database}"
    name = f"labelfarm_history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_upgrade_turns_past_standings_into_history(empty_database: str):
    db = Database(empty_database)
    migrate(db, "0008")
    manual = {"set_by": 1, "previous": "paused"}
    automatic = {"gold_answers": 6, "accuracy_mean": 0.2, "credible_90": [0.1, 0.4]}
    with db.engine.begin() as conn:
        for sql in (
            "INSERT INTO workspaces (id, slug, name, created_at) VALUES (1, 'w', 'W', 0)",
            "INSERT INTO users (id, username, display_name, pseudonym, created_at) VALUES "
            "(1, 'boss', 'Boss', 'm-1', 0), (2, 'ann', 'Ann', 'a-2', 0), "
            "(3, 'bob', 'Bob', 'a-3', 0), (4, 'new', 'New', 'a-4', 0)",
            "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES "
            "(1, 1, 'manager', 0), (1, 2, 'annotator', 0), (1, 3, 'annotator', 0)",
            "INSERT INTO projects (id, workspace_id, name, schema_version, created_at, "
            "updated_at) VALUES (1, 1, 'p', 1, 0, 0)",
        ):
            conn.execute(text(sql))
        conn.execute(
            text(
                "INSERT INTO annotator_status (project_id, user_id, state, reason, evidence, "
                "updated_at) VALUES (1, 2, 'active', 'ok', :m, 5), (1, 3, 'paused', 'low', :a, 4),"
                " (1, 4, 'active', '', '{}', 3)"
            ),
            {"m": json.dumps(manual), "a": json.dumps(automatic)},
        )
    migrate(db)
    with db.engine.connect() as conn:
        status = dict(conn.execute(text("SELECT user_id, evidence FROM annotator_status")).all())
        events = conn.execute(
            text("SELECT user_id, state, actor_id, audit_id, evidence FROM standing_events")
        ).all()
    db.dispose()
    assert json.loads(status[2]) == {"kind": "manual", "by_role": "manager", "previous": "paused"}
    assert json.loads(status[3])["kind"] == "accuracy_floor"
    assert sorted((e.user_id, e.state, e.actor_id, e.audit_id) for e in events) == [
        (2, "active", 1, 0),  # audited when it was made
        (3, "paused", None, None),  # never audited: waits for it
    ]


def test_the_annotator_is_told_a_rules_reason_in_their_language(world, team, paused):
    """A rule's reason reaches the annotator as a message key of the interface, which every
    catalogue says in its language; a manager's reason stays in their own words."""
    from labelfarm import i18n

    who = team["ann-a"]["client"]
    standing = who.request("GET", f"/projects/{paused.id}/standing")
    assert standing["state"] == "paused"
    key = standing["reason_key"]
    assert key == "standing.reason.accuracy_floor.paused"
    assert (
        who.request("POST", f"/projects/{paused.id}/next", json={"n": 1})["annotator"]["reason_key"]
        == key
    )
    texts = {lang: i18n.catalogue(lang).t(key) for lang in ("en", "ta", "hi")}
    assert len(set(texts.values())) == 3 and key not in texts.values()
    team["manager"]["client"].request(
        "PUT",
        f"/projects/{paused.id}/annotators/{team['ann-a']['id']}",
        json={"state": "paused", "reason": "spot check"},
    )
    standing = who.request("GET", f"/projects/{paused.id}/standing")
    assert (standing["reason"], standing["reason_key"]) == ("spot check", None)

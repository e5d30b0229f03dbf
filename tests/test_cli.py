"""The CLI: every command has help; init, user add, token create, import, export, migrate."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from labelfarm.cli import app

COMMANDS = [
    ["init"],
    ["serve"],
    ["demo"],
    ["migrate"],
    ["import"],
    ["export"],
    ["user", "add"],
    ["token", "create"],
    ["audit", "verify"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 200


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("LABELFARM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LABELFARM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LABELFARM_SECRET_KEY", "test-secret")
    return settings


def test_a_working_day_from_the_cli(world, env, tmp_path: Path):
    runner = CliRunner()
    r = runner.invoke(app, ["init", "--admin-username", "root", "--admin-password", "boss pw 1234"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["token", "create", "--user", "root", "--name", "ci"])
    assert r.exit_code == 0
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("lf_")
    root = world.client(token)
    ws = root.create_workspace("cli")
    project = root.create_project(
        ws["id"],
        "p",
        schema={"fields": [{"name": "label", "type": "choice", "options": ["a", "b"]}]},
    )
    r = runner.invoke(
        app,
        [
            "user",
            "add",
            "ann",
            "--password",
            "field worker 7",
            "--workspace",
            "cli",
            "--role",
            "annotator",
        ],
    )
    assert r.exit_code == 0, r.output
    src = tmp_path / "items.jsonl"
    src.write_text("".join(f'{{"data": {{"text": "t{i}"}}}}\n' for i in range(25)))
    r = runner.invoke(app, ["import", str(project["id"]), str(src)])
    assert r.exit_code == 0 and "imported 25 items" in r.output, r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"data": {"text": "ok"}}\n{"data": \n')
    r = runner.invoke(app, ["import", str(project["id"]), str(bad)])
    assert r.exit_code == 1 and "line 2" in r.output
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["export", str(project["id"]), str(out)])
    assert r.exit_code == 0
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [x["data"]["text"] for x in lines] == [f"t{i}" for i in range(25)]
    r = runner.invoke(app, ["migrate"])
    assert r.exit_code == 0


def test_demo_builds_projects_from_real_images(env):
    from labelfarm.demo import build_demo

    info = build_demo(env, n_images=40, log=lambda _m: None)
    assert {u["role"] for u in info["users"]} == {
        "admin",
        "manager",
        "reviewer",
        "annotator",
        "client",
    }
    names = [p["name"] for p in info["projects"]]
    assert names == ["Product photos", "Review moderation"]
    again = build_demo(env, n_images=40, log=lambda _m: None)
    assert again["users"] == info["users"]  # idempotent: the same users and passwords
    assert again.get("train_job") is None  # and nothing queued twice


def test_demo_trains_evaluates_promotes_and_prelabels(env):
    """The demo queues a train job on the reviewed seed photos; a worker runs it, and the
    version it made is evaluated on the held-out set, promoted, and pre-labels the photos
    nobody has labelled: an annotator's next task carries its prediction."""
    import time

    from labelfarm.db.engine import Database
    from labelfarm.demo import SEED_GOLD, build_demo
    from labelfarm.jobs.worker import Worker
    from labelfarm.services import audit, job_queue, projects, users
    from labelfarm.services.media import MediaStore
    from labelfarm.services.models import versions
    from labelfarm.services.tasks import lease

    info = build_demo(env, n_images=40, log=lambda _m: None)
    photos = info["projects"][0]
    db = Database(env.resolved_database_url)
    audit.use_key(db, env.resolved_audit_key)
    queued = db.run(job_queue.get_job, info["train_job"])
    assert (queued.kind, queued.state, queued.params["then"]) == (
        "train",
        "queued",
        "promote_and_predict",
    )
    media = MediaStore(env.resolved_media_root, env.resolved_secret_key)
    ran = Worker(env, db, media, name="demo-test").run_until_idle()
    assert [(j.kind, j.state) for j in ran if j.project_id == photos["id"]] == [
        ("train", "done"),
        ("predict", "done"),
    ]
    version = db.run(versions.promoted_version, photos["id"])
    assert version is not None and version.state == "ready" and version.n_train > 0
    evaluation = version.evaluation or {}
    assert evaluation["n"] == version.n_eval > SEED_GOLD  # the gold and the held-out reviewed
    assert 0.5 < evaluation["fields"]["product"]["accuracy"] <= 1.0
    predicted = ran[-1].result or {}
    assert predicted["predicted"] >= 40  # every photo to label, and the gold
    project = db.run(projects.load_project, photos["id"])
    anbu = db.run(users.user_by_username, "anbu")["id"]
    task = db.run(lease.next_tasks, project, anbu, 1, time.time())[0]
    prediction = task["prediction"]
    assert prediction["model"] == version.predictor
    assert prediction["model_version"] == str(version.version)
    db.dispose()

"""Label Studio 1.23.2 as a peer target, in its own virtual environment under ``.bench-envs/``.

Never a labelfarm dependency: the benchmark creates the venv and pip-installs Label Studio
into it on first use. The database after Label Studio's migrations (~25 s of work) is kept as
a template (a file for SQLite, a template database for PostgreSQL) so later starts take
seconds; every run still gets a fresh copy.

Annotators are real Label Studio users, each with its own legacy API token, created the way
``label-studio start --username`` creates its user (``label_studio/server.py::_create_user``):
a short Django script run with the venv's interpreter.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from _targets import (
    LABELS,
    Api,
    BenchError,
    Export,
    free_port,
    item_text,
    start_process,
    stop_process,
    tail,
    timed,
    wait_healthy,
)

VERSION = "1.23.2"
REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_DIR = REPO_ROOT / ".bench-envs" / f"label-studio-{VERSION}"
SQLITE_TEMPLATE = ENV_DIR / "template" / "label_studio.sqlite3"
PG_DATABASE = "labelstudio_bench"
PG_TEMPLATE = "labelstudio_bench_template"
ADMIN = "admin@bench.local"
IMPORT_CHUNK = 10_000  # pre-annotated tasks per import request when filling the export project
QUIET_ENV = {
    "LATEST_VERSION_CHECK": "false",
    "COLLECT_ANALYTICS": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "FEATURE_FLAGS_OFFLINE": "true",
}
LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
    + "".join(f'<Choice value="{label}"/>' for label in LABELS)
    + "</Choices></View>"
)
CREATE_USERS_SCRIPT = """
import json, os, sys
import label_studio
sys.path.insert(0, os.path.dirname(label_studio.__file__))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
import django
django.setup()
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User
org = Organization.objects.first()
for spec in json.load(sys.stdin):
    user = User.objects.create_user(email=spec["email"], password=None)
    org.add_user(user)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    Token.objects.filter(user=user).delete()
    Token.objects.create(user=user, key=spec["token"])
"""


def _bin(name: str) -> Path:
    return ENV_DIR / "bin" / name


def ensure_installed() -> None:
    """Creates the venv and installs Label Studio into it unless already there."""
    if _bin("label-studio").exists():
        return
    print(f"installing label-studio=={VERSION} into {ENV_DIR} (several minutes) …", file=sys.stderr)
    ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(ENV_DIR)], check=True)
        pip = [str(_bin("pip")), "install", "--quiet", f"label-studio=={VERSION}"]
        subprocess.run(pip, check=True, timeout=3600)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(ENV_DIR, ignore_errors=True)  # no half-installed env next time
        raise BenchError(f"installing Label Studio failed: {exc}") from exc


def _pg_admin(server_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(f"{server_url}/postgres", autocommit=True)


def _pg_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _pg_recreate(conn: psycopg.Connection[Any], name: str, template: str | None = None) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    conn.execute(create)


class LabelStudioTarget:
    prefix = "label-studio"

    def __init__(self, backend: str, pg_server_url: str, log_dir: Path) -> None:
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(backend)
        self.backend = backend
        self.pg_server_url = pg_server_url
        self.log = log_dir / f"label-studio-{backend}.log"
        self.server_pid = 0
        self.base_url = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._api: Api | None = None
        self._env: dict[str, str] = {}
        self._tokens: list[str] = []

    # environment and templates ---------------------------------------------------------
    def _ls_env(self, data_dir: Path, pg_database: str) -> dict[str, str]:
        env = {**os.environ, **QUIET_ENV, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir)}
        if self.backend == "postgresql":
            user_host = self.pg_server_url.split("://", 1)[1]
            user, host_port = user_host.split("@", 1)
            host, _, port = host_port.partition(":")
            env.update(
                DJANGO_DB="default",
                POSTGRE_NAME=pg_database,
                POSTGRE_USER=user,
                POSTGRE_PASSWORD="",
                POSTGRE_HOST=host,
                POSTGRE_PORT=port or "5432",
            )
        return env

    def _migrate(self, data_dir: Path, pg_database: str) -> None:
        """``label-studio version`` applies all migrations, then exits."""
        env = self._ls_env(data_dir, pg_database)
        argv = [str(_bin("label-studio")), "version", "--data-dir", str(data_dir)]
        with self.log.open("ab") as out:
            done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900)
        if done.returncode != 0:
            raise BenchError(f"Label Studio migrations failed; log tail:\n{tail(self.log)}")

    def _prepare_sqlite(self, data_dir: Path) -> None:
        if not SQLITE_TEMPLATE.exists():
            with tempfile.TemporaryDirectory(dir=ENV_DIR) as scratch:
                self._migrate(Path(scratch), "")
                SQLITE_TEMPLATE.parent.mkdir(exist_ok=True)
                shutil.move(Path(scratch) / SQLITE_TEMPLATE.name, SQLITE_TEMPLATE)
        shutil.copyfile(SQLITE_TEMPLATE, data_dir / SQLITE_TEMPLATE.name)

    def _prepare_postgresql(self, data_dir: Path) -> None:
        try:
            self._prepare_postgresql_databases(data_dir)
        except psycopg.Error as exc:
            raise BenchError(f"PostgreSQL at {self.pg_server_url}: {exc}") from exc

    def _prepare_postgresql_databases(self, data_dir: Path) -> None:
        with _pg_admin(self.pg_server_url) as conn:
            if not _pg_exists(conn, PG_TEMPLATE):
                scratch = f"{PG_TEMPLATE}_partial"
                _pg_recreate(conn, scratch)
                self._migrate(data_dir, scratch)
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(scratch), sql.Identifier(PG_TEMPLATE)
                    )
                )
            _pg_recreate(conn, PG_DATABASE, template=PG_TEMPLATE)

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        ensure_installed()
        self._tmp = tempfile.TemporaryDirectory(prefix="label-studio-bench-")
        data_dir = Path(self._tmp.name)
        if self.backend == "sqlite":
            self._prepare_sqlite(data_dir)
        else:
            self._prepare_postgresql(data_dir)
        self._env = self._ls_env(data_dir, PG_DATABASE)
        token = secrets.token_hex(20)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        argv = [
            str(_bin("label-studio")),
            "start",
            "--data-dir",
            str(data_dir),
            "--internal-host",
            "127.0.0.1",
            "-p",
            str(port),
            "-b",
            "--username",
            ADMIN,
            "--password",
            secrets.token_urlsafe(16),
            "--user-token",
            token,
            "--enable-legacy-api-token",
        ]
        self._process = start_process(argv, self._env, self.log)
        self.server_pid = self._process.pid
        wait_healthy(f"{self.base_url}/health", self._process, 300, self.log)
        self._api = Api(self.base_url, f"Token {token}", timeout_s=1800)

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
        stop_process(self._process)
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def api(self) -> Api:
        if self._api is None:
            raise BenchError("target not started")
        return self._api

    # setup -----------------------------------------------------------------------------
    def create_annotators(self, n: int) -> list[str]:
        specs = [
            {"email": f"annotator{i:03d}@bench.local", "token": secrets.token_hex(20)}
            for i in range(len(self._tokens), n)
        ]
        if specs:
            done = subprocess.run(
                [str(_bin("python")), "-c", CREATE_USERS_SCRIPT],
                input=orjson.dumps(specs),
                env=self._env,
                capture_output=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise BenchError(f"creating LS users failed:\n{done.stderr.decode()[-2000:]}")
            self._tokens.extend(spec["token"] for spec in specs)
        return self._tokens[:n]

    def create_project(self, name: str) -> int:
        body = {
            "title": name,
            "label_config": LABEL_CONFIG,
            "maximum_annotations": 1,
            "sampling": "Sequential sampling",
        }
        return int(self.api.call("POST", "/api/projects/", json=body)["id"])

    def _import(self, project_id: int, tasks: list[dict[str, Any]]) -> float:
        body = orjson.dumps(tasks)
        with timed() as elapsed:
            result = self.api.call(
                "POST",
                f"/api/projects/{project_id}/import",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        if int(result["task_count"]) != len(tasks):
            raise BenchError(f"LS imported {result['task_count']} tasks, expected {len(tasks)}")
        return elapsed[0]

    def import_items(self, project_id: int, n: int) -> float:
        return self._import(project_id, [{"data": {"text": item_text(i)}} for i in range(n)])

    def create_annotated_project(self, name: str, n: int) -> int:
        """Label Studio's fastest way: import tasks that already carry their annotation."""
        project_id = self.create_project(name)
        for start in range(0, n, IMPORT_CHUNK):
            tasks = [_annotated_task(i) for i in range(start, min(n, start + IMPORT_CHUNK))]
            self._import(project_id, tasks)
        return project_id

    # measurement -----------------------------------------------------------------------
    def export(self, project_id: int, rss: Any) -> Export:
        rss.take()
        with timed() as elapsed:
            n_bytes = self.api.stream_to_nowhere(
                f"/api/projects/{project_id}/export?exportType=JSON&download_all_tasks=true",
                timeout_s=1800,
            )
        return Export(seconds=elapsed[0], n_bytes=n_bytes, peak_rss_mb=rss.take())

    def load_config(self, project_id: int) -> dict[str, Any]:
        return {"flavor": "label-studio", "base_url": self.base_url, "project_id": project_id}


def _annotated_task(i: int) -> dict[str, Any]:
    value = {"choices": [LABELS[i % 3]]}
    result = {"from_name": "label", "to_name": "text", "type": "choices", "value": value}
    return {"data": {"text": item_text(i)}, "annotations": [{"result": [result]}]}

"""labelfarm as a benchmark target: ``labelfarm serve`` on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
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
    timed,
    wait_healthy,
)

PG_DATABASE = "labelfarm_bench"
SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": list(LABELS)}]}
BATCH = 500  # tasks per next / annotations per submit when filling the export project
FILLERS = 4  # annotators filling the export project in parallel


def labelfarm_command(override: str | None = None) -> list[str]:
    """``override`` split on spaces, else the running interpreter's ``labelfarm`` script."""
    if override:
        return override.split()
    beside = Path(sys.executable).with_name("labelfarm")
    found = str(beside) if beside.exists() else shutil.which("labelfarm")
    if not found:
        raise BenchError("labelfarm is not installed: run `pip install -e .` from the repo root")
    return [found]


def recreate_pg_database(server_url: str, name: str) -> None:
    """Drops and creates database ``name`` on the server at ``server_url`` (a libpq URL)."""
    try:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL at {server_url}: {exc}") from exc


def jsonl_items(n: int, start: int = 0) -> bytes:
    return b"\n".join(
        orjson.dumps({"data": {"text": item_text(i)}}) for i in range(start, start + n)
    )


class LabelfarmTarget:
    def __init__(
        self, backend: str, pg_server_url: str, log_dir: Path, command: str | None = None
    ) -> None:
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(backend)
        self._command_override = command
        self.command: list[str] = []
        self.prefix = backend
        self.backend = backend
        self.pg_server_url = pg_server_url
        self.log = log_dir / f"labelfarm-{backend}.log"
        self.server_pid = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._api: Api | None = None
        self._workspace_id = 0
        self._tokens: list[str] = []
        self.base_url = ""

    # lifecycle -------------------------------------------------------------------------
    def _env(self, data_dir: Path) -> dict[str, str]:
        if self.backend == "sqlite":
            url = f"sqlite:///{data_dir}/labelfarm.db"
        else:
            recreate_pg_database(self.pg_server_url, PG_DATABASE)
            host_part = self.pg_server_url.split("://", 1)[1]
            url = f"postgresql+psycopg://{host_part}/{PG_DATABASE}"
        return {**os.environ, "LABELFARM_DATABASE_URL": url, "LABELFARM_DATA_DIR": str(data_dir)}

    def _cli(self, env: dict[str, str], *args: str) -> str:
        done = subprocess.run(
            [*self.command, *args], env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise BenchError(
                f"labelfarm {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def start(self) -> None:
        self.command = labelfarm_command(self._command_override)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"labelfarm-bench-{self.backend}-")
        data_dir = Path(self._tmp.name)
        env = self._env(data_dir)
        password = secrets.token_urlsafe(16)
        self._cli(env, "init", "--admin-username", "admin", "--admin-password", password)
        out = self._cli(env, "token", "create", "--user", "admin", "--name", "bench")
        token = out.strip().splitlines()[-1].strip()
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        argv = [*self.command, "serve", "--host", "127.0.0.1", "--port", str(port)]
        self._process = start_process(argv, env, self.log)
        self.server_pid = self._process.pid
        wait_healthy(f"{self.base_url}/healthz", self._process, 60, self.log)
        self._api = Api(self.base_url, f"Bearer {token}", timeout_s=900)
        ws = self.api.call("POST", "/api/v1/workspaces", json={"slug": "bench", "name": "Bench"})
        self._workspace_id = int(ws["id"])

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
        """Users are created 4 at a time: password hashing (argon2) dominates."""
        with ThreadPoolExecutor(4) as pool:
            self._tokens.extend(pool.map(self._create_annotator, range(len(self._tokens), n)))
        return self._tokens[:n]

    def _create_annotator(self, i: int) -> str:
        user = self.api.call(
            "POST",
            "/api/v1/users",
            json={"username": f"annotator{i:03d}", "password": secrets.token_urlsafe(16)},
        )
        uid = user["id"]
        self.api.call(
            "PUT",
            f"/api/v1/workspaces/{self._workspace_id}/members/{uid}",
            json={"role": "annotator"},
        )
        token = self.api.call("POST", f"/api/v1/users/{uid}/tokens", json={"name": "bench"})
        return str(token["token"])

    def create_project(self, name: str) -> int:
        body = {
            "name": name,
            "schema": SCHEMA,
            "overlap": 1,
            "lease_seconds": 600,
            "ordering": "fifo",
        }
        project = self.api.call(
            "POST", f"/api/v1/workspaces/{self._workspace_id}/projects", json=body
        )
        return int(project["id"])

    def import_items(self, project_id: int, n: int) -> float:
        body = jsonl_items(n)
        with timed() as elapsed:
            result = self.api.call(
                "POST",
                f"/api/v1/projects/{project_id}/imports?format=jsonl",
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
            )
        if int(result.get("n_items", n)) != n:
            raise BenchError(f"import stored {result.get('n_items')} items, expected {n}")
        return elapsed[0]

    def create_annotated_project(self, name: str, n: int) -> int:
        project_id = self.create_project(name)
        self.import_items(project_id, n)
        tokens = self.create_annotators(FILLERS)
        with ThreadPoolExecutor(FILLERS) as pool:
            counts = list(pool.map(lambda t: self._fill(project_id, t, n), tokens))
        if sum(counts) != n:
            raise BenchError(f"annotated {sum(counts)} of {n} items")
        return project_id

    def _fill(self, project_id: int, token: str, limit: int) -> int:
        """One annotator takes tasks in batches and submits each batch in one request."""
        api = Api(self.base_url, f"Bearer {token}")
        batch, done = BATCH, 0
        try:
            while done <= limit:
                try:
                    got = api.call("POST", f"/api/v1/projects/{project_id}/next", json={"n": batch})
                except BenchError:
                    if batch == 1:
                        raise
                    batch = max(1, batch // 4)  # the server may cap n; ask for fewer
                    continue
                tasks = got["tasks"]
                if not tasks:
                    return done
                annotations = [_annotation(t) for t in tasks]
                api.call(
                    "POST",
                    f"/api/v1/projects/{project_id}/submit",
                    json={"annotations": annotations},
                )
                done += len(tasks)
            raise BenchError(f"the queue handed out more than the project's {limit} items")
        finally:
            api.close()

    # measurement -----------------------------------------------------------------------
    def export(self, project_id: int, rss: Any) -> Export:
        rss.take()
        with timed() as elapsed:
            n_bytes = self.api.stream_to_nowhere(
                f"/api/v1/projects/{project_id}/export?format=jsonl", timeout_s=1800
            )
        return Export(seconds=elapsed[0], n_bytes=n_bytes, peak_rss_mb=rss.take())

    def load_config(self, project_id: int) -> dict[str, Any]:
        return {"flavor": "labelfarm", "base_url": self.base_url, "project_id": project_id}


def _annotation(task: dict[str, Any]) -> dict[str, Any]:
    """An answer to a task (named by its handle), the label chosen by the item's number."""
    item = int(task["data"]["text"].split(":")[0].removeprefix("item "))
    return {
        "id": str(uuid.uuid4()),
        "task": task["task"],
        "value": {"label": LABELS[item % 3]},
        "duration_ms": 1200,
    }

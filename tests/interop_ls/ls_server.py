"""A real Label Studio server for the interoperability tests, and a small client of its API.

The server runs from a virtual environment of its own (``label-studio==1.23.2``, prepared by
``scripts/test.sh`` with a migrated empty database beside it), on 127.0.0.1 and a free port,
with a fresh SQLite database and media folder, one administrator and a legacy API token made
at start (``LABEL_STUDIO_USERNAME``/``_PASSWORD``/``_USER_TOKEN``; legacy tokens are off by
default in 1.23, ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN`` turns them on), and local files
served from a folder of the test's (``LOCAL_FILES_SERVING_ENABLED``), to the projects that
have a local files storage there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

VERSION = "1.23.2"
VENV_ENV = "LABELFARM_LABEL_STUDIO"
ADMIN_EMAIL = "migration@example.com"
TEMPLATE = "labelfarm-template.sqlite3"  # made by scripts/test.sh beside the environment


def default_venv() -> Path:
    """Where ``scripts/test.sh`` keeps the Label Studio environment (outside the clone)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "labelfarm" / f"label-studio-{VERSION}"


def find_venv() -> tuple[Path | None, str]:
    """The Label Studio environment to use, or None and why there is none."""
    given = os.environ.get(VENV_ENV)
    venv = Path(given) if given else default_venv()
    python = venv / "bin" / "python"
    installed = (venv / "lib").glob(f"python3*/site-packages/label_studio-{VERSION}.dist-info")
    if not python.exists() or not any(installed):
        origin = f"{VENV_ENV}={given}" if given else f"the default {venv} ({VENV_ENV} unset)"
        return None, (
            f"no Label Studio {VERSION} environment at {origin}: run scripts/test.sh once "
            f"(it installs label-studio=={VERSION} there), or point {VENV_ENV} at a virtual "
            f"environment holding it"
        )
    return venv, ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabelStudioServer:
    """``label-studio start`` as a child process in a session of its own."""

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(20)
        self.log_path = workdir / "label-studio.log"
        self.files = workdir / "files"  # served as local files, from storages below it
        self._proc: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.files.mkdir(exist_ok=True)
        template = self.venv / TEMPLATE
        if template.exists():  # a migrated empty database: no migrations at start
            shutil.copyfile(template, data / "label_studio.sqlite3")
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "LABEL_STUDIO_BASE_DATA_DIR": str(data),
            "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
            "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
            "LABEL_STUDIO_USER_TOKEN": self.token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(self.files),
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",
            "LOG_LEVEL": "WARNING",
        }

    def start(self, timeout: float = 600.0) -> None:
        """Start the server and wait until it answers with our token (without the
        template database it first migrates a new one: minutes on a busy machine)."""
        cmd = [
            str(self.venv / "bin" / "python"),
            "-m",
            "label_studio.server",
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Label Studio exited ({self._proc.returncode}):\n{self.log_tail()}"
                )
            if self._answers():
                return
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(
            f"Label Studio did not answer within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def _answers(self) -> bool:
        """True once the server on our port knows our token (so it is ours, not a stranger
        that took the port, and the user exists)."""
        try:
            r = httpx.get(
                f"{self.url}/api/current-user/whoami",
                headers={"Authorization": f"Token {self.token}"},
                timeout=5,
            )
        except httpx.HTTPError:
            return False
        try:
            return r.status_code == 200 and r.json().get("email") == ADMIN_EMAIL
        except ValueError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """End the server and everything it started (its process group)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


class LabelStudioAPI:
    """The parts of Label Studio's REST API the round trip uses, as its own pages use them."""

    def __init__(self, url: str, token: str, files: Path) -> None:
        self.files = files
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Token {token}"}, timeout=120
        )

    def __enter__(self) -> LabelStudioAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise AssertionError(
                f"Label Studio {response.request.method} {response.request.url.path} → "
                f"{response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self._ok(self.http.get(path, params=params))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._ok(self.http.post(path, **kwargs))

    def create_user(self, email: str) -> int:
        """An annotator of the organisation (the admin's), by its id."""
        user = self.post("/api/users/", json={"email": email, "username": email.split("@")[0]})
        return int(user["id"])

    def user_id(self, email: str) -> int | None:
        for user in self.get("/api/users/"):
            if user["email"] == email:
                return int(user["id"])
        return None

    def create_project(self, title: str, label_config: str) -> int:
        body = {"title": title, "label_config": label_config}
        return int(self.post("/api/projects/", json=body)["id"])

    def upload(self, project_id: int, files: list[tuple[str, bytes, str]]) -> None:
        """Upload files as the import dialog does: an image becomes a task, a JSON file
        a list of tasks (with their annotations)."""
        # one form field per file: Label Studio reads one file per field name
        parts = [(name, (name, content, mime)) for name, content, mime in files]
        self.post(f"/api/projects/{project_id}/import", files=parts)

    def serve_folder(self, project_id: int, folder: Path) -> None:
        """Let the project show files below ``folder`` (a folder under :attr:`files`) as
        ``/data/local-files/?d=<path below files>``: a local files storage."""
        body = {"project": project_id, "path": str(folder), "title": folder.name}
        self.post("/api/storages/localfiles/", json={**body, "use_blob_urls": True})

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        page = self.get("/api/tasks", project=project_id, page_size=1000, fields="all")
        return sorted(page["tasks"], key=lambda t: t["id"])

    def annotate(
        self, task_id: int, result: list[dict[str, Any]], *, completed_by: int, lead_time: float
    ) -> dict[str, Any]:
        """Submit an annotation as the labeling page does on "Submit"."""
        body = {"result": result, "completed_by": completed_by, "lead_time": lead_time}
        return dict(self.post(f"/api/tasks/{task_id}/annotations/", json=body))

    def predict(
        self, task_id: int, result: list[dict[str, Any]], *, model_version: str, score: float
    ) -> None:
        body = {"task": task_id, "result": result, "model_version": model_version, "score": score}
        self.post("/api/predictions/", json=body)

    def annotations(self, task_id: int) -> list[dict[str, Any]]:
        return list(self.get(f"/api/tasks/{task_id}/annotations/"))

    def export(self, project_id: int) -> bytes:
        """The file the Export button downloads in JSON format (all tasks)."""
        r = self.http.get(
            f"/api/projects/{project_id}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
        self._ok(r)
        return r.content

    def media(self, url: str) -> bytes:
        """A task's media as Label Studio serves it to its labeling page."""
        r = self.http.get(url)
        if r.status_code >= 400:
            self._ok(r)
        return r.content

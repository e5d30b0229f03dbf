"""The media attack, replayed in a real Chromium against a real server: a manager of another
workspace uploads a script and an HTML page that loads it, through ordinary COCO imports;
an instance administrator, signed in, opens the page's link. No script may run: the script
would read the CSRF token and create a superuser through the API."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lf_browser import Server, login
from lf_world import PASSWORD, build_world

from labelfarm.db.engine import Database
from labelfarm.services import audit, users

SCRIPT = """
document.title = "script ran";
(async () => {
  const home = await (await fetch("/", {credentials: "include"})).text();
  const csrf = home.match(/name="csrf_token" value="([^"]+)"/)[1];
  const r = await fetch("/api/v1/users", {
    method: "POST",
    credentials: "include",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify({username: "intruder", password: "Vq8#tLm2!pWx7rZk-intr",
                          is_superuser: true}),
  });
  document.title = "script ran: " + r.status;
})();
"""


def coco_zip(name: str, content: bytes) -> bytes:
    doc = {
        "images": [{"id": name, "file_name": name}],
        "annotations": [],
        "categories": [{"id": 1, "name": "thing"}],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("annotations/instances.json", json.dumps(doc))
        zf.writestr(f"images/{name}", content)
    return out.getvalue()


def counts(server: Server) -> tuple[int, int]:
    """Users, and superusers, in the server's database."""
    with sqlite3.connect(server.world.settings.data_dir / "labelfarm.db") as con:
        n, supers = con.execute(
            "SELECT COUNT(*), SUM(CASE WHEN is_superuser THEN 1 ELSE 0 END) FROM users"
        ).fetchone()
    return int(n), int(supers)


@pytest.fixture
def attack_server(tmp_path: Path) -> Iterator[Server]:
    """The page world, plus a manager of the other workspace and an instance administrator."""
    data_dir = tmp_path / "data"
    world = build_world(data_dir, n_images=1, n_choice=1)
    db = Database(world.settings.resolved_database_url)
    audit.use_key(db, world.settings.resolved_audit_key)
    for username, superuser in (("mallory", False), ("root", True)):
        db.run(
            users.register,
            username=username,
            password=PASSWORD,
            now=time.time(),
            is_superuser=superuser,
            workspace_id=None if superuser else world.other_workspace_id,
            role=None if superuser else "manager",
        )
    db.engine.dispose()
    srv = Server(world, data_dir)
    yield srv
    srv.stop()


def upload(api: Any, project_id: int, name: str, content: bytes) -> str:
    """Import ``name`` as a COCO image; the signed link to it, as the API hands it out."""
    r = api.post(
        f"/api/v1/projects/{project_id}/imports",
        params={"format": "coco", "filename": f"{name}.zip"},
        content=coco_zip(name, content),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 201, r.text
    tasks = api.post(f"/api/v1/projects/{project_id}/next", json={"n": 10}).json()["tasks"]
    (task,) = [t for t in tasks if t["data"]["image"] == name]
    url: str = task["media_url"]
    return url


def test_an_uploaded_page_cannot_act_as_the_admin_who_opens_it(
    attack_server: Server, chromium: Any
) -> None:
    server = attack_server
    mallory = server.api("mallory")
    project = mallory.post(
        f"/api/v1/workspaces/{server.world.other_workspace_id}/projects",
        json={
            "name": "innocent",
            "schema": {"fields": [{"name": "ok", "type": "choice", "options": ["y", "n"]}]},
        },
    )
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    js_url = upload(mallory, pid, "x.js", SCRIPT.encode())
    page_html = f'<!doctype html><title>hello</title><script src="{js_url}"></script>'
    html_url = upload(mallory, pid, "x.html", page_html.encode())
    before = counts(server)

    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        login(page, server.url, "root", f"/w/{server.world.workspace_id}")
        try:
            page.goto(server.url + html_url)
        except Exception as exc:  # served as an attachment: a download, not a page
            assert "download" in str(exc).lower() or "aborted" in str(exc).lower(), exc
        page.wait_for_timeout(1500)  # time enough for the script's two requests
        assert "script ran" not in page.title()
        # the script itself, opened directly, is not a page that runs either
        try:
            page.goto(server.url + js_url)
        except Exception as exc:
            assert "download" in str(exc).lower() or "aborted" in str(exc).lower(), exc
        page.wait_for_timeout(300)
        assert "script ran" not in page.title()
    finally:
        context.close()
    assert counts(server) == before
    with sqlite3.connect(server.world.settings.data_dir / "labelfarm.db") as con:
        assert con.execute("SELECT 1 FROM users WHERE username = 'intruder'").fetchone() is None

"""Every API route × every role × a foreign workspace: refused where it must be.

Routes are discovered from the app itself, so a new route is covered the moment it exists,
and a route that declares no policy fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from labelfarm.services import job_queue
from labelfarm.web.app import api_routes, route_policy
from labelfarm.web.policies import Policy

ROLES = ("admin", "manager", "reviewer", "annotator", "client")
REFUSED = (401, 403, 404)


def test_every_route_declares_a_policy(app):
    missing = [f"{m} {p}" for m, p, r in api_routes(app) if route_policy(r) is None]
    assert missing == [], f"routes without a policy: {missing}"
    assert len(api_routes(app)) > 25


def test_a_route_without_a_policy_is_caught(app):
    extra = FastAPI()

    @extra.get("/api/v1/oops")
    async def oops() -> dict:
        return {}

    assert [(m, p) for m, p, r in api_routes(extra) if route_policy(r) is None] == [
        ("GET", "/api/v1/oops")
    ]


@pytest.fixture
def estate(world, tmp_path: Path):
    ws = world.workspace("home")
    other = world.workspace("other")
    people = {role: world.user(f"u-{role}", role=role, workspace=ws) for role in ROLES}
    people["superuser"] = world.user("root", superuser=True)
    people["foreign"] = world.user("stranger", role="admin", workspace=other)
    victim = world.user("victim", role="annotator", workspace=ws)
    project = world.project(ws, overlap=3)
    world.add_items(project, 3, tmp_path)
    job = world.db.run(  # a job of the project: its routes answer for it, not "no such job"
        job_queue.enqueue,
        kind="refit",
        params={},
        now=world.clock(),
        project_id=project.id,
        workspace_id=ws["id"],
    )
    return {"ws": ws, "people": people, "victim": victim, "project": project, "job": job}


def _expected(policy: Policy, who: str) -> bool:
    """Whether ``who`` may call a route of ``policy`` on the home workspace's resources."""
    if policy.scope in ("public", "signed"):
        return True
    if who == "anonymous":
        return False
    if who == "superuser" or policy.scope == "authenticated":
        return True
    if policy.scope in ("superuser", "self"):  # self routes are called on the victim
        return False
    if who == "foreign":
        return False
    return who in policy.roles


def _url(path: str, estate: dict) -> str:
    values = {
        "workspace_id": estate["ws"]["id"],
        "project_id": estate["project"].id,
        "user_id": estate["victim"]["id"],
        "item_id": 1,
        "token_id": 10_000,
        "import_id": 1,
        "sha": "0" * 64,
        "job_id": estate["job"],
        "backend_id": 10_000,
        "version": 10_000,
        "issue_id": 10_000,
    }
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values[m.group(1)]), path)


def test_every_route_refuses_the_wrong_role_and_foreign_workspaces(world, estate):
    routes = [
        (m, p, route_policy(r))
        for m, p, r in api_routes(world.app)
        if route_policy(r) is not None and route_policy(r).scope not in ("public", "signed")
    ]
    callers = {**{k: v["token"] for k, v in estate["people"].items()}, "anonymous": None}
    failures = []
    for method, path, policy in routes:
        assert policy is not None
        url = _url(path, estate)
        for who, token in callers.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = httpx.Client(
                transport=world.transport, base_url="http://testserver"
            ).request(method, url, headers=headers, json={})
            allowed = _expected(policy, who)
            error = response.json()["error"] if response.status_code >= 400 else {}
            refused = response.status_code in REFUSED and (
                response.status_code != 404
                or error["message"].startswith("no such")
                or who == "anonymous"
            )
            if allowed and response.status_code in (401, 403):
                failures.append(f"{who} refused on {method} {path}: {response.status_code}")
            if not allowed and not refused:
                failures.append(f"{who} allowed on {method} {path}: {response.status_code}")
            if response.status_code >= 400:
                assert set(error) == {"code", "message", "details"}, (method, path)
    assert failures == []


def test_annotator_cannot_read_items_beyond_own_leases(world, estate):
    annotator = estate["people"]["annotator"]["client"]
    project = estate["project"]
    for path in (
        f"/projects/{project.id}/items",
        f"/projects/{project.id}/items/1",
        f"/projects/{project.id}/export",
    ):
        with pytest.raises(Exception) as err:
            annotator.request("GET", path)
        assert getattr(err.value, "status", None) == 403


def test_foreign_admin_sees_nothing_of_another_workspace(world, estate):
    foreign = estate["people"]["foreign"]["client"]
    assert [w["slug"] for w in foreign.request("GET", "/workspaces")["workspaces"]] == ["other"]
    for path in (
        f"/workspaces/{estate['ws']['id']}/projects",
        f"/projects/{estate['project'].id}",
        f"/projects/{estate['project'].id}/export",
    ):
        with pytest.raises(Exception) as err:
            foreign.request("GET", path)
        assert getattr(err.value, "status", None) == 404

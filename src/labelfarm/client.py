"""Python SDK over the JSON API.

    from labelfarm import Client
    lf = Client("http://127.0.0.1:8080", token="lf_...")
    project = lf.create_project(workspace_id, "photos", schema={...})
    lf.import_file(project["id"], "items.jsonl")
    tasks = lf.next(project["id"], n=5)
    lf.submit(project["id"], [{"task": t["task"], "value": {...}} for t in tasks])
    lf.export(project["id"], "out.jsonl")

The transport is injectable: ``Client(transport=AppTransport(create_app(settings)))``
talks to an app in-process, with no server: that is how the tests use it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx

_CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
}


class AppTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app in-process.

    httpx's own ``ASGITransport`` is async only; this runs it on an event loop in a
    background thread (an anyio blocking portal), so sync code such as :class:`Client`
    and the tests can talk to the real app without a server.
    """

    def __init__(self, app: Any, *, raise_app_exceptions: bool = True) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            areq = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            response = await self._asgi.handle_async_request(areq)
            body = b"".join([chunk async for chunk in response.aiter_raw()])  # still encoded
            return response.status_code, response.headers.raw, body

        status, headers, body = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


class LabelfarmAPIError(Exception):
    """An error answered by the server, in labelfarm's one error shape."""

    def __init__(self, status: int, code: str, message: str, details: list[dict]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class Client:
    """A labelfarm API client. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport, timeout=timeout
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/api/v1{path}", **kwargs)
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                raise LabelfarmAPIError(
                    response.status_code, "http_error", response.text[:500], []
                ) from None
            raise LabelfarmAPIError(
                response.status_code, err["code"], err["message"], err.get("details", [])
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- instance -----------------------------------------------------------------------
    def me(self) -> dict:
        return self.request("GET", "/me")

    def create_workspace(self, slug: str, name: str | None = None) -> dict:
        return self.request("POST", "/workspaces", json={"slug": slug, "name": name or slug})

    def create_user(self, username: str, password: str, **fields: Any) -> dict:
        return self.request(
            "POST", "/users", json={"username": username, "password": password, **fields}
        )

    def set_role(self, workspace_id: int, user_id: int, role: str) -> dict:
        return self.request(
            "PUT", f"/workspaces/{workspace_id}/members/{user_id}", json={"role": role}
        )

    def create_token(
        self, user_id: int, name: str = "sdk", *, expires_days: float | None = None
    ) -> str:
        """A new token's secret (shown once); with ``expires_days`` it stops working then."""
        body: dict[str, Any] = {"name": name}
        if expires_days is not None:
            body["expires_days"] = expires_days
        return self.request("POST", f"/users/{user_id}/tokens", json=body)["token"]

    def tokens(self, user_id: int) -> list[dict]:
        """The user's tokens (never their secrets), newest first."""
        return self.request("GET", f"/users/{user_id}/tokens")["tokens"]

    def revoke_token(self, user_id: int, token_id: int) -> None:
        self.request("DELETE", f"/users/{user_id}/tokens/{token_id}")

    # -- projects -----------------------------------------------------------------------
    def create_project(
        self, workspace_id: int, name: str, *, schema: dict | str, **settings: Any
    ) -> dict:
        body = {"name": name, "schema": schema, **settings}
        return self.request("POST", f"/workspaces/{workspace_id}/projects", json=body)

    def projects(self, workspace_id: int) -> list[dict]:
        return self.request("GET", f"/workspaces/{workspace_id}/projects")["projects"]

    def project(self, project_id: int) -> dict:
        return self.request("GET", f"/projects/{project_id}")

    def update_project(self, project_id: int, **changes: Any) -> dict:
        return self.request("PATCH", f"/projects/{project_id}", json=changes)

    def progress(self, project_id: int) -> dict:
        return self.request("GET", f"/projects/{project_id}/progress")

    def release_leases(self, project_id: int, user_id: int) -> int:
        """End every lease the user holds in the project (a manager's call); how many."""
        path = f"/projects/{project_id}/annotators/{user_id}/leases"
        return int(self.request("DELETE", path)["released"])

    # -- import / export ------------------------------------------------------------------
    def import_file(self, project_id: int, path: str | Path, *, format: str | None = None) -> dict:
        """Import a file; without ``format`` the server tells it from the name and content."""
        path = Path(path)
        with path.open("rb") as fh:
            return self.import_bytes(project_id, fh, format=format, filename=path.name)

    def import_bytes(
        self, project_id: int, content: Any, *, format: str | None = None, filename: str = "upload"
    ) -> dict:
        params = (
            {"filename": filename} if format is None else {"format": format, "filename": filename}
        )
        return self.request(
            "POST",
            f"/projects/{project_id}/imports",
            params=params,
            content=content,
            headers={"Content-Type": _CONTENT_TYPES.get(format or "", "application/octet-stream")},
        )

    def export(
        self, project_id: int, path: str | Path, *, format: str = "jsonl", **options: Any
    ) -> Path:
        path = Path(path)
        with path.open("wb") as out:
            for chunk in self.export_stream(project_id, format=format, **options):
                out.write(chunk)
        return path

    def export_stream(
        self,
        project_id: int,
        *,
        format: str = "jsonl",
        completed_by: dict[str, int | str] | None = None,
        media_url: str | None = None,
    ) -> Iterator[bytes]:
        """The export, a chunk at a time. ``completed_by`` (managers, for a migration) maps
        usernames to annotators' ids in Label Studio; ``media_url`` is put before the path of
        media stored in labelfarm (see the ``labelstudio`` format)."""
        params: dict[str, str] = {"format": format}
        if completed_by is not None:
            params["completed_by"] = json.dumps(completed_by)
        if media_url is not None:
            params["media_url"] = media_url
        with self._http.stream(
            "GET", f"/api/v1/projects/{project_id}/export", params=params
        ) as response:
            if response.status_code >= 400:
                response.read()
                self._decode(response)
            yield from response.iter_bytes()

    # -- annotating ---------------------------------------------------------------------
    # An annotator's tasks are named by handles (``task``), personal to the annotator and
    # the project: send them back as they came. Item ids are for managers and exports.
    def next(self, project_id: int, n: int = 1) -> list[dict]:
        """Lease up to ``n`` tasks: ``{"task", "data", "lease_expires_at", "prediction",
        "media_url"}``."""
        return self.request("POST", f"/projects/{project_id}/next", json={"n": n})["tasks"]

    def checkout(
        self, project_id: int, n: int | None = None, *, hours: float | None = None
    ) -> list[dict]:
        """Lease a batch for offline work, as :meth:`next` answers."""
        body = {k: v for k, v in (("n", n), ("hours", hours)) if v is not None}
        return self.request("POST", f"/projects/{project_id}/checkout", json=body)["tasks"]

    def submit(self, project_id: int, annotations: Iterable[dict]) -> list[dict]:
        """Store entries ``{"task", "value", "id"?, "duration_ms"?, "corrects"?}`` (an ``id``
        is generated when missing: send the same one again to replay safely)."""
        batch = [{"id": a.get("id") or str(uuid.uuid4()), **a} for a in annotations]
        body = {"annotations": batch}
        return self.request("POST", f"/projects/{project_id}/submit", json=body)["results"]

    def skip(self, project_id: int, task: str, reason: str) -> dict:
        """Give a task back with a reason: ``{"task", "status"}``."""
        return self.request(
            "POST", f"/projects/{project_id}/skip", json={"task": task, "reason": reason}
        )

"""The OpenAPI document tells the truth, and the API holds to it.

* every operation declares its real answer (a response model, or its media types) and the
  one error shape at every error status it can return, derived here from its policy;
* a 405 names in ``Allow`` every method its path answers;
* ids outside what the database holds are refused (422), never a server error;
* schemathesis, run in-process against the served document as a manager and as an
  annotator (fixed seed), finds no server error and no answer that breaks the document.

Operations are discovered from the served document and the app, so a new route is covered
the moment it exists.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import requests
import schemathesis
import soundfile
from fastapi.responses import Response
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import BigInteger, Integer

from labelfarm.client import AppTransport
from labelfarm.db.tables import MAX_INT, metadata
from labelfarm.jobs.worker import Worker
from labelfarm.services import audit_anchor, job_queue, label_errors
from labelfarm.services.label_errors_rank import Suspect
from labelfarm.services.projects import load_project
from labelfarm.web.app import api_routes, route_policy
from labelfarm.web.policies import SAFE_METHODS, Policy
from media_files import coco_zip, png
from model_server_stub import stub_server

BASE_URL = "http://testserver"
DOCUMENT = "/api/v1/openapi.json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
OUT_OF_RANGE = (2**63, 2**31, -1, 0)


@pytest.fixture
def http(world) -> Iterator[httpx.Client]:
    transport = AppTransport(world.app, raise_app_exceptions=False)
    with httpx.Client(transport=transport, base_url=BASE_URL) as client:
        yield client
    transport.close()


@pytest.fixture
def document(http) -> dict[str, Any]:
    response = http.get(DOCUMENT)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def estate(world, tmp_path: Path) -> dict[str, Any]:
    """A workspace with a manager, an annotator and a project of a few items."""
    ws = world.workspace("home")
    manager = world.user("manager", role="manager", workspace=ws)
    annotator = world.user("annotator", role="annotator", workspace=ws)
    root = world.user("root", superuser=True)
    project = world.project(ws, gold_rate=0.0)
    world.add_items(project, 6, tmp_path)
    return {"ws": ws, "manager": manager, "annotator": annotator, "root": root, "project": project}


def real_ids(estate: Mapping[str, Any]) -> dict[str, Any]:
    """Existing rows for path parameters, by name."""
    return {
        "workspace_id": estate["ws"]["id"],
        "project_id": estate["project"].id,
        "user_id": estate["annotator"]["id"],
        "item_id": 1,
        "token_id": 1,
        "sha": "0" * 64,
        "size": 320,
        "level": 0,
        "project": estate["project"].id,
        "handle": "h" * 32,
        "backend_id": 10_000,
        "job_id": 10_000,
        "version": 10_000,
    }


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method.upper() in METHODS:
                yield method.upper(), path, operation


def fill(path: str, values: Mapping[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


# -- the document --------------------------------------------------------------------------
def expected_errors(policy: Policy, method: str, has_input: bool) -> set[int]:
    """The error statuses a route of ``policy`` can answer, whatever it does."""
    scope = policy.scope
    out = set()
    if scope not in ("public", "signed"):
        out.add(401)
    if scope in ("superuser", "self", "workspace", "project", "signed") or (
        scope != "public" and method not in SAFE_METHODS  # a session's CSRF token
    ):
        out.add(403)
    if scope in ("workspace", "project", "signed"):
        out.add(404)
    if has_input:
        out.add(422)
    if method not in SAFE_METHODS:
        out.add(413)  # the app's body limit
    return out


def test_every_operation_declares_its_answer_and_its_errors(world, document):
    # a path parameter's convertor ({version:number}) is not part of the documented path
    routes = {
        (m, re.sub(r"\{(\w+):\w+\}", r"{\1}", p)): r
        for m, p, r in api_routes(world.app)
        if r.include_in_schema
    }
    assert {(m, p) for m, p, _ in operations(document)} == set(routes)
    assert len(routes) >= 35
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    problems = []
    for method, path, operation in operations(document):
        route = routes[(method, path)]
        answers = operation["responses"]
        success = [int(s) for s in answers if s.startswith("2")]
        if success != [route.status_code or 200]:
            problems.append(f"{method} {path}: success {success}, route {route.status_code}")
        content = answers[str(success[0])].get("content", {})
        for media_type, body in content.items():
            schema = body.get("schema", {})
            a_file = route.response_class is Response  # e.g. an export as JSON
            if media_type == "application/json" and "$ref" not in schema and not a_file:
                problems.append(f"{method} {path}: no response model ({schema})")
        if not content:
            problems.append(f"{method} {path}: no media type for its answer")
        declared = {int(s) for s in answers if not s.startswith("2")}
        has_input = bool(operation.get("parameters") or operation.get("requestBody"))
        policy = route_policy(route)
        assert policy is not None
        missing = expected_errors(policy, method, has_input) - declared
        if missing:
            problems.append(f"{method} {path}: errors {sorted(missing)} not declared")
        for status in declared:
            shape = answers[str(status)]["content"]["application/json"]["schema"]
            if shape != {"$ref": "#/components/schemas/ErrorBody"}:
                problems.append(f"{method} {path}: {status} is not the error shape")
    assert problems == []
    error = schemas["ErrorInfo"]
    assert set(error["required"]) == {"code", "message", "details"}


def test_answers_are_documented_never_validated(world):
    """Routes return their JSON themselves: FastAPI validates and serializes no answer (the
    hot path pays nothing for the document); the models are the document's alone."""
    for method, path, route in api_routes(world.app):
        assert route.response_model is None, f"{method} {path} validates its answers"


def test_id_columns_fit_the_bound(world):
    """``MAX_INT`` bounds ids because every id column is an Integer (32-bit on PostgreSQL);
    a BigInteger id column would need a larger bound."""
    assert MAX_INT == 2**31 - 1
    for table in metadata.sorted_tables:
        for column in table.columns:
            name = f"{table.name}.{column.name}"
            assert not isinstance(column.type, BigInteger), name
            if column.name == "id":
                assert isinstance(column.type, Integer), name


# -- 405 -------------------------------------------------------------------------------------
def test_405_names_every_method_of_the_path(http, document):
    names = ("workspace_id", "project_id", "user_id", "item_id", "token_id", "job_id", "version")
    ids = {name: 1 for name in names}
    ids |= {"sha": "0" * 64, "size": 320, "level": 0, "project": 1, "handle": "h" * 32}
    ids |= {"backend_id": 1}
    checked = 0
    for path, item in document["paths"].items():
        allowed = {m.upper() for m in item if m.upper() in METHODS}
        for method in sorted(set(METHODS) - allowed):
            response = http.request(method, fill(path, ids))
            assert response.status_code == 405, (method, path, response.status_code)
            names = {m.strip() for m in response.headers["allow"].split(",")}
            assert names == allowed, (method, path, response.headers["allow"])
            assert response.json()["error"]["code"] == "method_not_allowed"
            checked += 1
    assert checked > 100
    response = http.delete("/healthz")
    assert response.status_code == 405 and response.headers["allow"] == "GET"


def test_an_unparsable_body_is_invalid_input(http, estate):
    """A body the framework cannot parse is refused like any invalid input (422, the one
    error shape), not with an undocumented 400."""
    headers = {"Authorization": f"Bearer {estate['annotator']['token']}"}
    headers["Content-Type"] = "application/json"
    url = f"/api/v1/projects/{estate['project'].id}/next"
    response = http.post(url, content=b"\xff\xfe{", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


def test_text_the_database_cannot_hold_is_refused(http, estate):
    """Text longer than its column, or with a NUL (PostgreSQL stores none), is invalid input;
    an annotator named by a number no id can be is not found. Never a server error."""
    root = {"Authorization": f"Bearer {estate['root']['token']}"}
    ws, project = estate["ws"]["id"], estate["project"].id
    refused = [
        ("POST", "/api/v1/sites", {"code": "x", "name": "n" * 201}),
        ("POST", "/api/v1/sites", {"code": "c" * 65, "name": "n"}),
        ("POST", "/api/v1/workspaces", {"slug": "long", "name": "n" * 201}),
        ("POST", f"/api/v1/workspaces/{ws}/projects", {"name": "n" * 201, "schema": CHOICE}),
        ("PATCH", f"/api/v1/projects/{project}", {"name": "n" * 201}),
        ("POST", "/api/v1/auth/login", {"username": "a\x00b", "password": "x"}),
        ("POST", f"/api/v1/projects/{project}/skip", {"task": "t" * 32, "reason": "a\x00"}),
    ]
    for method, url, body in refused:
        response = http.request(method, url, json=body, headers=root)
        assert response.status_code == 422, (method, url, response.status_code)
    entry = {"id": "a\x00", "task": "t" * 32, "value": {"label": "a"}}
    r = http.post(f"/api/v1/projects/{project}/submit", json={"annotations": [entry]}, headers=root)
    assert r.status_code == 422
    for who in ("\u00b2", "9" * 30, "a%00"):  # %00: a NUL, as the path holds it
        url = f"/api/v1/projects/{project}/annotators/{who}/quality"
        assert http.get(url, headers=root).status_code == 404, who
    r = http.patch(f"/api/v1/projects/{project}", json={"guidelines": None}, headers=root)
    assert r.status_code == 200 and r.json()["guidelines"] == ""  # null: left unchanged


# -- ids out of range ------------------------------------------------------------------------
ID_NAMES = {"before", "after", "item", "workspace", "user", "project"}  # ids not named *_id


def _id_parameters(operation: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(location, name, least value) of the operation's integer ids; each is declared
    with the bound ``MAX_INT``."""
    out = []
    for p in operation.get("parameters", []):
        if not (p["name"].endswith("_id") or p["name"] in ID_NAMES):
            continue
        schema = p.get("schema", {})
        for kind in (schema, *schema.get("anyOf", [])):
            if kind.get("type") == "integer":
                assert kind.get("maximum") == MAX_INT, (p["name"], kind)
                out.append((p["in"], p["name"], kind.get("minimum", 1)))
    return out


def test_ids_out_of_range_are_refused_not_failed(http, document, estate):
    """2^63, 2^31, -1 and 0 in every id of every route, as an instance admin (who passes
    every policy) and as a manager: refused as invalid input, never a server error."""
    ids = real_ids(estate)
    callers = {"root": estate["root"]["token"], "manager": estate["manager"]["token"]}
    tried = set()
    failures = []
    for method, path, operation in operations(document):
        for where, name, least in _id_parameters(operation):
            tried.add((where, name))
            for bad in (v for v in OUT_OF_RANGE if v < least or v > MAX_INT):
                url = fill(path, {**ids, name: bad} if where == "path" else ids)
                params = {name: bad} if where == "query" else {}
                for caller, token in callers.items():
                    headers = {"Authorization": f"Bearer {token}"}
                    r = http.request(method, url, params=params, headers=headers, json={})
                    # the manager may be refused first, by the policy (403)
                    if r.status_code != 422 and (caller, r.status_code) != ("manager", 403):
                        failures.append(f"{method} {url} {params} as {caller}: {r.status_code}")
    assert failures == []
    assert {("path", n) for n in ("workspace_id", "project_id", "user_id", "item_id")} <= tried
    assert ("query", "before") in tried


def test_ids_out_of_range_in_bodies_are_refused(http, estate, world):
    headers = {"Authorization": f"Bearer {estate['annotator']['token']}"}
    base = f"/api/v1/projects/{estate['project'].id}"
    handle = world.handle(estate["project"].id, estate["annotator"], 1)
    for bad in OUT_OF_RANGE:
        skip = http.post(f"{base}/skip", json={"task": bad, "reason": "x"}, headers=headers)
        assert skip.status_code == 422, skip.text
        for field in ("task", "corrects", "duration_ms"):
            entry = {"id": "a", "task": handle, "value": {"label": "a"}, field: bad}
            if field == "duration_ms" and bad == 0:
                continue  # no time at all is a duration
            r = http.post(f"{base}/submit", json={"annotations": [entry]}, headers=headers)
            assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == field
        root = {"Authorization": f"Bearer {estate['root']['token']}"}
        body = {"decision": "accept", "annotation_id": bad}
        assert http.post(f"{base}/review/1", json=body, headers=root).status_code == 422


# -- schemathesis ----------------------------------------------------------------------------
def _send(http: httpx.Client, kwargs: Mapping[str, Any]) -> httpx.Response:
    """A request as schemathesis prepared it (``requests`` keywords), encoded by requests
    (bodies, multipart forms, cookies) and sent to the app with httpx."""
    wanted = ("method", "url", "headers", "files", "data", "params", "cookies", "json")
    prepared = requests.Request(**{k: kwargs[k] for k in wanted if k in kwargs}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert prepared.method is not None and prepared.url is not None
    return http.request(prepared.method, prepared.url, headers=dict(prepared.headers), content=body)


def _answer(response: httpx.Response) -> schemathesis.Response:
    """An httpx response as schemathesis checks one (its own converter wants a timing)."""
    sent = response.request
    request = requests.Request(
        method=sent.method, url=str(sent.url), headers=dict(sent.headers), data=sent.content
    ).prepare()
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        headers.setdefault(name.lower(), []).append(value)
    return schemathesis.Response(
        status_code=response.status_code,
        headers=headers,
        content=response.content,
        request=request,
        elapsed=0.0,
        verify=True,
        message=response.reason_phrase,
        encoding=response.encoding,
    )


def _strategy(operation: Any, ids: Mapping[str, Any]) -> Any:
    """Cases that fit the document, cases that do not, and fitting cases on real rows."""
    names = [p.name for p in operation.path_parameters]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if names and all(name in ids for name in names):
        real = {name: ids[name] for name in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    return st.one_of(strategies)


def fuzz(
    http: httpx.Client,
    tokens: Mapping[str, Mapping[str, Any]],
    ids: Mapping[str, Any],
    *,
    examples: int,
    only: Sequence[str] = (),
) -> tuple[list[str], int]:
    """Fuzz every operation of the served document as each caller of ``tokens`` (name ->
    a created token: ``id`` and secret ``token``), ``examples`` cases each, derived from a
    fixed seed and not shrunk. No case revokes the callers' own tokens, which would leave
    the rest of the run signed out. Returns the failures (the first per operation and
    caller, with a curl command to replay it) and the number of operations fuzzed."""
    schema = schemathesis.openapi.from_dict(http.get(DOCUMENT).json())
    failures: list[str] = []
    seen = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if only and operation.label not in only:
            continue
        seen += 1
        strategy = _strategy(operation, ids).filter(_spares(tokens))
        for caller, token in tokens.items():
            try:
                _check(http, strategy, {"Authorization": f"Bearer {token['token']}"}, examples)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} as {caller}:\n{exc}")
    return failures, seen


def _spares(tokens: Mapping[str, Mapping[str, Any]]) -> Any:
    """A filter of cases: none names one of ``tokens`` (the run's own) by id."""
    mine = {str(t["id"]) for t in tokens.values()}
    return lambda case: str((case.path_parameters or {}).get("token_id")) not in mine


def _check(http: httpx.Client, strategy: Any, headers: dict[str, str], examples: int) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
        response = _send(http, kwargs)
        case.validate_response(_answer(response), checks=CHECKS, headers=headers)

    check()


def _fuzz_as_manager_and_annotator(http, document, estate, examples: int) -> None:
    tokens = {
        role: estate[role]["client"].request(
            "POST", f"/users/{estate[role]['id']}/tokens", json={"name": "fuzz"}
        )
        for role in ("manager", "annotator")
    }
    failures, seen = fuzz(http, tokens, real_ids(estate), examples=examples)
    assert seen == len(list(operations(document)))
    assert failures == [], "\n\n".join(failures)


def test_schemathesis_finds_nothing(http, document, estate):
    """The short run: a few cases per operation and caller (well under a minute)."""
    _fuzz_as_manager_and_annotator(http, document, estate, examples=10)


@pytest.mark.slow
def test_schemathesis_finds_nothing_in_a_longer_run(http, document, estate):
    _fuzz_as_manager_and_annotator(http, document, estate, examples=150)


# -- every success answer, on real data --------------------------------------------------------
class Checked:
    """A client whose every answer is checked against the served document as it arrives:
    its status is declared, its body fits the declared schema. Records the operations that
    answered with success."""

    def __init__(self, http: httpx.Client, document: Mapping[str, Any]) -> None:
        self.http = http
        self.schema = schemathesis.openapi.from_dict(dict(document))
        self.templates = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), path, method.upper())
            for path, item in document["paths"].items()
            for method in item
        ]
        self.succeeded: set[str] = set()

    def __call__(self, method: str, url: str, token: str | None = None, **kw: Any) -> Any:
        headers = {
            **kw.pop("headers", {}),
            **({"Authorization": f"Bearer {token}"} if token else {}),
        }
        response = self.http.request(method, url, headers=headers, **kw)
        path = httpx.URL(url).path
        found = [t for rx, t, m in self.templates if m == method and rx.match(path)]
        assert len(found) == 1, (method, path)
        operation = self.schema[found[0]][method]
        declared = operation.definition.raw["responses"]
        assert str(response.status_code) in declared, (method, url, response.status_code)
        operation.validate_response(_answer(response))
        if response.status_code < 300:
            self.succeeded.add(f"{method} {found[0]}")
        return response

    def ok(self, method: str, url: str, token: str | None = None, **kw: Any) -> Any:
        response = self(method, url, token, **kw)
        assert response.status_code < 300, (method, url, response.status_code, response.text)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response


CHOICE = {"fields": [{"name": "label", "type": "choice", "options": ["a", "b", "c"]}]}
BOXES = {"fields": [{"name": "boxes", "type": "bbox", "labels": ["thing"]}]}
PASSWORD = "plum orchard at dusk 42"


def _jsonl(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_every_success_answer_fits_the_document(world, http, document):
    """Every operation, called with valid input on real data (gold, reviews, media, an
    anchor), answers with success, and every answer fits the document."""
    api = Checked(http, document)
    root = world.user("root", superuser=True)["token"]
    api.ok("GET", "/healthz")
    api.ok("GET", "/api/v1/me", root)
    ws = _admin(api, root)
    people = _people(api, world, root, ws)
    text_project, image_project = _projects(api, root, ws)
    _annotate(api, people, text_project, image_project)
    _media_by_role(api, root, image_project)
    _quality(api, root, people, text_project)
    _models(api, world, root, text_project)
    _data(api, root, text_project)
    _data_jobs(api, world, root, text_project)
    _project_from_file(api, root, ws)
    _audit(api, world, root, ws)
    _jobs(api, world, root, text_project)
    _asr(api, root, ws)
    _transcripts(api, root, ws)
    _audio(api, root, people["ann"]["token"], ws)
    _ml_backends(api, root, text_project)
    _endings(api, root, people, ws, text_project)
    everything = {f"{m} {p}" for m, p, _ in operations(document)}
    assert everything - api.succeeded == set()


def _admin(api: Checked, root: str) -> int:
    api.ok("POST", "/api/v1/sites", root, json={"code": "hq", "name": "Head office"})
    ws = api.ok("POST", "/api/v1/workspaces", root, json={"slug": "acme", "name": "Acme"})
    api.ok("GET", "/api/v1/workspaces", root)
    api.ok("GET", f"/api/v1/workspaces/{ws['id']}", root)
    return int(ws["id"])


def _people(api: Checked, world: Any, root: str, ws: int) -> dict[str, Any]:
    body = {"username": "staff1", "password": PASSWORD, "site": "hq", "display_name": "S"}
    api.ok("POST", "/api/v1/users", root, json=body)
    member = {"username": "ann", "password": PASSWORD, "role": "annotator", "locale": "ta"}
    ann = api.ok("POST", f"/api/v1/workspaces/{ws}/members", root, json=member)
    base = f"/api/v1/users/{ann['id']}/tokens"
    token = api.ok("POST", base, root, json={"name": "laptop", "expires_days": 30})["token"]
    spare = api.ok("POST", base, token, json={"name": "spare"})
    api.ok("GET", base, token)
    api.ok("DELETE", f"{base}/{spare['id']}", token)
    api.ok("PUT", f"/api/v1/workspaces/{ws}/members/{ann['id']}", root, json={"role": "annotator"})
    api.ok("GET", f"/api/v1/workspaces/{ws}/members", root)
    workspace = {"id": ws}
    other = world.user("ann2", role="annotator", workspace=workspace)
    client = world.user("client1", role="client", workspace=workspace)
    return {"ann": {**ann, "token": token}, "ann2": other, "client": client}


def _projects(api: Checked, root: str, ws: int) -> tuple[int, int]:
    settings = {"overlap": 2, "training": True, "accuracy_floor": 0.1, "gold_rate": 0.5}
    body = {"name": "texts", "schema": CHOICE, **settings}
    text_project = api.ok("POST", f"/api/v1/workspaces/{ws}/projects", root, json=body)["id"]
    image = {"name": "images", "schema": BOXES}
    image_project = api.ok("POST", f"/api/v1/workspaces/{ws}/projects", root, json=image)["id"]
    api.ok("GET", f"/api/v1/projects/{text_project}", root)
    api.ok("PATCH", f"/api/v1/projects/{text_project}", root, json={"description": "words"})
    api.ok("GET", f"/api/v1/workspaces/{ws}/projects", root)
    rows = [{"data": {"text": f"plain {i}"}} for i in range(4)]
    rows += [{"data": {"text": f"gold {i}"}, "gold": {"label": "a"}} for i in range(2)]
    rows.append({"data": {"text": "guessed"}, "predictions": [{"value": {"label": "b"}}]})
    api.ok("POST", f"/api/v1/projects/{text_project}/imports", root, content=_jsonl(rows))
    coco = coco_zip({"one.png": png((400, 300))})
    url = f"/api/v1/projects/{image_project}/imports?format=coco&filename=photos.zip"
    api.ok("POST", url, root, files={"file": ("photos.zip", coco, "application/zip")})
    return int(text_project), int(image_project)


def _annotate(api: Checked, people: Mapping[str, Any], text: int, image: int) -> None:
    for who, answer in (("ann", "a"), ("ann2", "b")):
        token = people[who]["token"]
        tasks = api.ok("POST", f"/api/v1/projects/{text}/next", token, json={"n": 7})["tasks"]
        entries = [
            {"id": f"{who}-{t['task']}", "task": t["task"], "value": {"label": answer}}
            for t in tasks[:-1]
        ]
        api.ok("POST", f"/api/v1/projects/{text}/submit", token, json={"annotations": entries})
        skip = {"task": tasks[-1]["task"], "reason": "unreadable"}
        api.ok("POST", f"/api/v1/projects/{text}/skip", token, json=skip)
        api.ok("GET", f"/api/v1/projects/{text}/standing", token)
        api.ok("GET", f"/api/v1/projects/{text}/progress/me?since=2000-01-01T00:00:00Z", token)
    token = people["ann"]["token"]
    task = api.ok("POST", f"/api/v1/projects/{image}/checkout", token, json={"n": 1})["tasks"][0]
    media = httpx.URL(task["media_url"])
    api.ok("GET", f"{media.path}?{media.query.decode()}")
    api.ok("GET", f"{media.path}/fit/160?{media.query.decode()}")


def _media_by_role(api: Checked, root: str, project: int) -> None:
    """A manager's media URL (by sha and role), as the review page gives it."""
    item = api.ok("GET", f"/api/v1/projects/{project}/items?limit=1", root)["items"][0]["id"]
    media = httpx.URL(
        api.ok("GET", f"/api/v1/projects/{project}/review/{item}", root)["item"]["media_url"]
    )
    api.ok("GET", f"{media.path}?{media.query.decode()}")
    api.ok("GET", f"{media.path}/fit/160?{media.query.decode()}")


def _quality(api: Checked, root: str, people: Mapping[str, Any], project: int) -> None:
    base = f"/api/v1/projects/{project}"
    ann = people["ann"]
    api.ok("GET", f"{base}/progress", root)
    api.ok("GET", f"{base}/annotators", root)
    body = {"state": "active", "reason": "checked by hand"}
    api.ok("PUT", f"{base}/annotators/{ann['id']}", root, json=body)
    later = {"since": "2100-01-01T00:00:00Z", "reason": "none yet: nothing sent back"}
    api.ok("POST", f"{base}/annotators/{ann['id']}/relabel", root, json=later)
    api.ok("POST", f"{base}/quality/refit", root)
    for token in (root, people["client"]["token"]):
        api.ok("GET", f"{base}/quality", token)
        api.ok("GET", f"{base}/annotators/{ann['pseudonym']}/quality", token)
    queue = api.ok("GET", f"{base}/review", root)
    item = queue["items"][0]["item_id"]
    shown = api.ok("GET", f"{base}/review/{item}", root)
    choice = {"decision": "accept", "annotation_id": shown["annotations"][0]["annotation_id"]}
    api.ok("POST", f"{base}/review/{item}", root, json=choice)
    api.ok("GET", f"{base}/review/{item}", root)
    api.ok("GET", f"{base}/review/{item}/diff", root)  # no transcripts here: no fields
    api.ok("GET", f"{base}/asr/quality", people["client"]["token"])


def _data(api: Checked, root: str, project: int) -> None:
    base = f"/api/v1/projects/{project}"
    api.ok("GET", f"{base}/imports", root)
    page = api.ok("GET", f"{base}/items?limit=3", root)
    api.ok("GET", f"{base}/items/{page['items'][0]['id']}", root)
    for fmt in ("jsonl", "csv", "labelstudio"):
        api.ok("GET", f"{base}/export?format={fmt}", root)


def _data_jobs(api: Checked, world: Any, root: str, project: int) -> None:
    """Imports and exports as jobs, run by a worker in between."""
    base = f"/api/v1/projects/{project}"
    rows = b'{"data": {"text": "by job"}}\n'
    job = api.ok("POST", f"{base}/imports/jobs?format=jsonl&filename=j.jsonl", root, content=rows)
    export = api.ok("POST", f"{base}/exports", root, json={"format": "csv"})
    Worker(world.ctx.settings, world.db, world.ctx.media, clock=world.clock).run_until_idle()
    api.ok("GET", f"{base}/imports/jobs/{job['job']['id']}", root)
    api.ok("GET", f"{base}/exports", root)
    api.ok("GET", f"{base}/exports/{export['job']['id']}", root)
    api.ok("GET", f"{base}/exports/{export['job']['id']}/file", root)


def _project_from_file(api: Checked, root: str, ws: int) -> None:
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    url = f"/api/v1/workspaces/{ws}/projects/from-file?name=from-coco&filename=instances.json"
    api.ok("POST", url, root, content=json.dumps(coco).encode())


def _audit(api: Checked, world: Any, root: str, ws: int) -> None:
    api.ok("GET", f"/api/v1/workspaces/{ws}/audit?limit=5", root)
    api.ok("GET", "/api/v1/audit/verify", root)
    private, _public = audit_anchor.generate_key_pair()
    world.db.run(audit_anchor.anchor_head, private, now=world.clock())
    api.ok("GET", f"/api/v1/workspaces/{ws}/audit/anchor", root)


def _ml_backends(api: Checked, root: str, project: int) -> None:
    base = f"/api/v1/projects/{project}/ml-backends"
    with stub_server() as server:
        found = api.ok("POST", base, root, json={"url": server.url, "title": "stub"})
        api.ok("GET", base, root)
        api.ok("GET", f"{base}/{found['id']}/health", root)
        api.ok("POST", f"{base}/{found['id']}/predict", root, json={"item_ids": [1]})
        api.ok("POST", f"{base}/{found['id']}/train", root, json={})
        api.ok("DELETE", f"{base}/{found['id']}", root)


def _models(api: Checked, world: Any, root: str, project: int) -> None:
    base = f"/api/v1/projects/{project}/models"
    api.ok("GET", "/api/v1/predictors", root)
    api.ok("POST", f"{base}/train", root, json={"predictor": "text-chargram-logreg.v1"})
    worker = Worker(world.ctx.settings, world.db, world.ctx.media, clock=world.clock)
    assert [(j.kind, j.state) for j in worker.run_until_idle()] == [("train", "done")]
    api.ok("GET", base, root)
    api.ok("GET", f"{base}/1", root)
    api.ok("POST", f"{base}/1/promote", root)
    api.ok("POST", f"{base}/1/predict", root, json={})
    api.ok("POST", f"{base}/1/evaluate", root)
    api.ok("POST", f"/api/v1/projects/{project}/scores/refresh", root)
    assert all(j.state == "done" for j in worker.run_until_idle())
    _learning(api, world, root, project)
    api.ok("POST", f"{base}/1/retire", root)


def _learning(api: Checked, world: Any, root: str, project: int) -> None:
    """The learning loop's reports and actions, with version 1 promoted."""
    base = f"/api/v1/projects/{project}"
    api.ok("GET", f"{base}/quality/calibration", root)
    api.ok("GET", f"{base}/quality/calibration.svg?field=label", root)
    api.ok("PATCH", base, root, json={"auto_accept_target": 0.9})
    api.ok("POST", f"{base}/auto-accept/run", root)
    api.ok("GET", f"{base}/confusion", root)
    api.ok("POST", f"{base}/confusion/evaluate", root)
    api.ok("POST", f"{base}/correction-rounds", root, json={"a": "a", "b": "b", "budget": 5})
    api.ok("GET", f"{base}/correction-rounds", root)
    api.ok("POST", f"{base}/correction-rounds/close", root, json={})
    api.ok("POST", f"{base}/label-errors/run", root, json={"folds": 2})
    worker = Worker(world.ctx.settings, world.db, world.ctx.media, clock=world.clock)
    ran = {j.kind: j for j in worker.run_until_idle()}
    assert ran["auto_accept"].state == "done"
    # four labelled items are too few to cross-validate: the job says so
    assert ran["label_errors"].state == "failed"
    assert "needs at least 10" in str(ran["label_errors"].error)
    api.ok("GET", f"{base}/auto-accept", root)
    item = api.ok("GET", f"{base}/items?limit=1", root)["items"][0]["id"]
    suspect = Suspect(item, "a", "b", 0.9, {"text": "model says b 0.90"})
    loaded = world.db.run(load_project, project)
    world.db.run(label_errors.store_run, loaded, "label", [suspect], job_id=None, now=1.0)
    api.ok("GET", f"{base}/label-errors", root)
    api.ok("POST", f"{base}/label-errors/{item}/dismiss", root)


def _jobs(api: Checked, world: Any, root: str, project: int) -> None:
    job = world.db.run(
        job_queue.enqueue, kind="refit", params={}, now=world.clock(), project_id=project
    )
    api.ok("GET", f"/api/v1/projects/{project}/jobs?state=queued&kind=refit", root)
    api.ok("GET", f"/api/v1/jobs/{job}", root)
    assert api.ok("POST", f"/api/v1/jobs/{job}/cancel", root)["state"] == "cancelled"


def _asr(api: Checked, root: str, ws: int) -> None:
    schema = {"fields": [{"name": "transcript", "type": "segments"}]}
    body = {"name": "speech", "schema": schema}
    project = api.ok("POST", f"/api/v1/workspaces/{ws}/projects", root, json=body)["id"]
    api.ok("POST", f"/api/v1/projects/{project}/asr", root, json={"language": "en"})


def _transcripts(api: Checked, root: str, ws: int) -> None:
    schema = {"fields": [{"name": "transcript", "type": "segments", "required": False}]}
    body = {"name": "subtitles", "schema": schema}
    project = api.ok("POST", f"/api/v1/workspaces/{ws}/projects", root, json=body)["id"]
    rows = _jsonl([{"audio": "talk.wav"}])
    api.ok("POST", f"/api/v1/projects/{project}/imports", root, content=rows)
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.500\n<v A>hello\n"
    api.ok("POST", f"/api/v1/projects/{project}/transcripts?filename=talk.vtt", root, content=vtt)


def _audio(api: Checked, root: str, annotator: str, ws: int) -> None:
    """An audio item's facts, peaks and listening copy, by lease and by role."""
    schema = {"fields": [{"name": "transcript", "type": "segments"}]}
    body = {"name": "talks", "schema": schema}
    project = api.ok("POST", f"/api/v1/workspaces/{ws}/projects", root, json=body)["id"]
    sound = io.BytesIO()
    soundfile.write(sound, np.zeros(8000, dtype=np.int16), 8000, format="WAV")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("talk.wav", sound.getvalue())
    url = f"/api/v1/projects/{project}/imports?filename=talks.zip&format=transcripts"
    api.ok("POST", url, root, content=archive.getvalue())
    task = api.ok("POST", f"/api/v1/projects/{project}/next", annotator, json={"n": 1})
    item = api.ok("GET", f"/api/v1/projects/{project}/items?limit=1", root)["items"][0]["id"]
    by_role = api.ok("GET", f"/api/v1/projects/{project}/review/{item}", root)["item"]
    for media_url in (task["tasks"][0]["media_url"], by_role["media_url"]):
        media = httpx.URL(media_url)
        query = media.query.decode()
        api.ok("GET", f"{media.path}/audio?{query}")
        api.ok("GET", f"{media.path}/audio/peaks/0?{query}")
        api.ok("GET", f"{media.path}/audio/stream?{query}")


def _endings(api: Checked, root: str, people: Mapping[str, Any], ws: int, project: int) -> None:
    ann = people["ann"]
    api.ok("DELETE", f"/api/v1/projects/{project}/annotators/{ann['id']}/leases", root)
    login = {"username": "ann", "password": PASSWORD}
    session = api.ok("POST", "/api/v1/auth/login", json=login)
    api.ok("POST", "/api/v1/auth/logout", headers={"X-CSRF-Token": session["csrf_token"]})
    api.ok("DELETE", f"/api/v1/workspaces/{ws}/members/{people['ann2']['id']}", root)

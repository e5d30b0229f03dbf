"""Calls to a model server in Label Studio's ML-backend HTTP shape (``label-studio-ml``).

========================  ===========================================================
call                      what is sent → what is expected
========================  ===========================================================
``GET /health``           → ``{"status": "UP", ...}``
``POST /setup``           ``{project, schema, hostname, access_token, model_version}``
                          → ``{"model_version": ...}``
``POST /predict``         ``{tasks, model_version, project, label_config, params}``
                          → ``{"results": [{"result": [...], "score", "model_version"}]}``
``POST /webhook``         ``{action, project, annotation, task}`` → anything
========================  ===========================================================

``/predict`` answers are read in every shape ``label-studio-ml`` 1.0.9 produces: its server
answers ``{"results": <what the model's predict returned>, "model_version"}``, and models
return one prediction object per task (``{"result": [...], "score": ...}``) or, in older
examples, a bare list of results per task; a backend answering a bare list of predictions
(no ``results`` key) is read too.

Every call has a timeout (the setting ``ml_backend_timeout_seconds``), is retried with
back-off on a refused or dropped connection and on a 5xx answer, sends basic auth when the
server has credentials, and reads at most :data:`MAX_ANSWER_BYTES` of an answer (a server
cannot exhaust the worker's memory). A failure is a :class:`BackendError` naming the
server, the call and what was wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from labelfarm.errors import LabelfarmError
from labelfarm.services.ml_backends import Backend

MAX_ANSWER_BYTES = 32 * 1024 * 1024
RETRIES = 2  # after the first attempt
BACKOFF_SECONDS = 0.5  # doubled after each retry
_RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class BackendError(LabelfarmError):
    """A model server could not be reached or answered something unusable."""

    status = 502
    code = "model_server_failed"


@dataclass(frozen=True)
class BackendPrediction:
    """One task's prediction as a server answered it."""

    result: list[Any]
    score: float | None
    model_version: str | None


class BackendClient:
    """One model server's calls; :meth:`close` (or ``with``) when done."""

    def __init__(
        self,
        backend: Backend,
        *,
        timeout: float,
        retries: int = RETRIES,
        backoff: float = BACKOFF_SECONDS,
        max_bytes: int = MAX_ANSWER_BYTES,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_bytes = max_bytes
        self._sleep = sleep
        auth = httpx.BasicAuth(*backend.auth) if backend.auth else None
        self._http = httpx.Client(
            base_url=backend.url,
            auth=auth,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "labelfarm", "Accept": "application/json"},
        )

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the calls ---------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The server's ``/health``; BackendError unless it says ``"status": "UP"``."""
        answer = self._call("GET", "/health")
        if not isinstance(answer, dict) or str(answer.get("status", "")).upper() != "UP":
            raise self._error("GET /health", f"not up: answered {_excerpt(answer)}")
        return answer

    def setup(
        self,
        *,
        project: str,
        schema: str,
        hostname: str,
        access_token: str,
        model_version: str | None,
    ) -> str | None:
        """``/setup``: the server loads its model for the project; its model version."""
        body = {
            "project": project,
            "schema": schema,
            "hostname": hostname,
            "access_token": access_token,
            "model_version": model_version,
        }
        answer = self._call("POST", "/setup", body)
        if not isinstance(answer, dict):
            raise self._error("POST /setup", f"expected an object, got {_excerpt(answer)}")
        version = answer.get("model_version")
        return None if version is None else str(version)

    def predict(
        self,
        *,
        tasks: list[dict[str, Any]],
        project: str,
        label_config: str,
        model_version: str | None,
        params: dict[str, Any] | None = None,
    ) -> list[BackendPrediction]:
        """``/predict`` for ``tasks``: one prediction per task, in their order."""
        body = {
            "tasks": tasks,
            "model_version": model_version,
            "project": project,
            "label_config": label_config,
            "params": params or {},
        }
        answer = self._call("POST", "/predict", body)
        try:
            return parse_predictions(answer, len(tasks))
        except ValueError as exc:
            raise self._error("POST /predict", str(exc)) from None

    def webhook(self, action: str, payload: dict[str, Any]) -> Any:
        """``/webhook`` with ``action`` (ANNOTATION_CREATED, START_TRAINING, …)."""
        return self._call("POST", "/webhook", {"action": action, **payload})

    # -- transport ---------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        what = f"{method} {path}"
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        attempt = 0
        while True:
            try:
                status, raw = self._send(method, path, content, headers, what)
            except httpx.TimeoutException:
                raise self._error(
                    what,
                    f"no answer within {self.timeout:g} s (the setting ml_backend_timeout_seconds)",
                ) from None
            except _RETRYABLE as exc:
                if attempt >= self.retries:
                    raise self._error(
                        what, f"cannot connect after {attempt + 1} attempts: {exc or type(exc)}"
                    ) from None
            else:
                if status < 500 or attempt >= self.retries:
                    return self._decoded(what, status, raw)
            self._sleep(self.backoff * 2**attempt)
            attempt += 1

    def _send(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str], what: str
    ) -> tuple[int, bytes]:
        """The status and at most ``max_bytes`` of the answer's body."""
        with self._http.stream(method, path, content=content, headers=headers) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large(what)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large(what)
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _decoded(self, what: str, status: int, raw: bytes) -> Any:
        if status in (401, 403):
            hint = "check auth_user and auth_secret" if self.backend.auth else "it wants auth"
            raise self._error(what, f"refused with HTTP {status} ({hint})")
        if not 200 <= status < 300:
            text = raw[:300].decode("utf-8", "replace").strip()
            raise self._error(what, f"answered HTTP {status}: {text or '(no body)'}")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = raw[:120].decode("utf-8", "replace")
            raise self._error(what, f"the answer is not JSON: {text!r}") from None

    def _too_large(self, what: str) -> BackendError:
        return self._error(what, f"the answer is larger than {self.max_bytes} bytes")

    def _error(self, what: str, reason: str) -> BackendError:
        return BackendError(
            f"model server {self.backend.name}: {what}: {reason}",
            [{"backend": self.backend.id, "call": what, "reason": reason}],
        )


def parse_predictions(answer: Any, n_tasks: int) -> list[BackendPrediction]:
    """The predictions of a ``/predict`` answer, in every shape label-studio-ml answers;
    ValueError saying what is wrong with it."""
    version = None
    if isinstance(answer, dict) and "results" in answer:
        items, version = answer["results"], answer.get("model_version")
    else:
        items = answer
    if not isinstance(items, list):
        raise ValueError(f'expected {{"results": [...]}} or a list, got {_excerpt(answer)}')
    if len(items) != n_tasks:
        raise ValueError(f"{len(items)} predictions for {n_tasks} tasks")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, list):  # the task's results, bare
            out.append(BackendPrediction(item, None, _text(version)))
            continue
        if not isinstance(item, dict):
            raise ValueError(f"results[{i}]: a prediction is an object, got {_excerpt(item)}")
        result = item.get("result", [])
        if not isinstance(result, list):
            raise ValueError(f"results[{i}].result: must be a list, got {_excerpt(result)}")
        score = item.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise ValueError(f"results[{i}].score: must be a number, got {_excerpt(score)}")
        found = item.get("model_version", version)
        out.append(BackendPrediction(result, None if score is None else float(score), _text(found)))
    return out


def _text(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)[:200]


def _excerpt(v: Any) -> str:
    text = orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    return text if len(text) <= 120 else text[:117] + "..."

"""Simulated annotators: the load-generating process of ``bench/queue.py``.

Runs in its own process so its CPU time is measured apart from the orchestrator's; the
orchestrator starts it as ``python -P bench/_loadclient.py`` with a JSON config on stdin and
reads one JSON result from stdout. Self-contained on purpose (``-P`` keeps ``bench/`` off
``sys.path``, where ``queue.py`` would shadow the standard library's ``queue``).

Each annotator is one asyncio task looping next → submit until the deadline; the cycle that
is under way at the deadline completes. All annotators share one keep-alive connection pool.
Every hand-out is tracked to check the queue's invariants on the client side:

* overlap: an item handed to more than ``overlap`` distinct annotators;
* duplicate: an item handed again to an annotator who has already submitted it (getting back
  an item one still holds, unsubmitted, is lease resumption and allowed).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Timeout(Exception):
    """A request did not finish within the configured timeout."""


class Transport(Protocol):
    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    def __init__(self, timeout_s: float, connections: int) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        connector = aiohttp.TCPConnector(
            limit=connections, keepalive_timeout=120, ttl_dns_cache=None
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            skip_auto_headers=("User-Agent",),
            auto_decompress=False,
        )

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        try:
            async with self._session.request(method, url, headers=headers, data=body) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise Timeout from exc

    async def close(self) -> None:
        await self._session.close()


class HttpxTransport:
    def __init__(self, timeout_s: float, connections: int) -> None:
        import httpx

        self._httpx = httpx
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(timeout=timeout_s, limits=limits)

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        try:
            response = await self._client.request(method, url, headers=headers, content=body)
        except self._httpx.TimeoutException as exc:
            raise Timeout from exc
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


TRANSPORTS: dict[str, type[AiohttpTransport] | type[HttpxTransport]] = {
    "aiohttp": AiohttpTransport,
    "httpx": HttpxTransport,
}


class RequestFailed(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


@dataclass
class Task:
    item_id: int  # the item, as the bench knows it (labelfarm: from its data; annotators
    # see only a handle), to check the overlap and label it
    ref: str  # what names the task when it is submitted


class Flavor(Protocol):
    """How one server spells next and submit."""

    def auth_headers(self, token: str) -> dict[str, str]: ...

    async def next_task(self, transport: Transport, headers: dict[str, str]) -> Task | None: ...

    async def submit(self, transport: Transport, headers: dict[str, str], task: Task) -> str: ...


def _check(status: int, body: bytes, op: str, ok: tuple[int, ...]) -> Any:
    if status not in ok:
        raise RequestFailed(f"{op}:{status}", body[:300].decode("utf-8", "replace"))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestFailed(f"{op}:bad-json", body[:300].decode("utf-8", "replace")) from exc


class LabelfarmFlavor:
    NEXT_BODY = orjson.dumps({"n": 1})

    def __init__(self, base_url: str, project_id: int) -> None:
        self.next_url = f"{base_url}/api/v1/projects/{project_id}/next"
        self.submit_url = f"{base_url}/api/v1/projects/{project_id}/submit"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {**JSON_HEADERS, "Authorization": f"Bearer {token}"}

    async def next_task(self, transport: Transport, headers: dict[str, str]) -> Task | None:
        status, body = await transport.request("POST", self.next_url, headers, self.NEXT_BODY)
        tasks = _check(status, body, "next", (200,))["tasks"]
        if not tasks:
            return None
        item = int(tasks[0]["data"]["text"].split(":")[0].removeprefix("item "))
        return Task(item, tasks[0]["task"])

    async def submit(self, transport: Transport, headers: dict[str, str], task: Task) -> str:
        annotation = {
            "id": str(uuid.uuid4()),
            "task": task.ref,
            "value": {"label": "abc"[task.item_id % 3]},
            "duration_ms": 1200,
        }
        payload = orjson.dumps({"annotations": [annotation]})
        status, body = await transport.request("POST", self.submit_url, headers, payload)
        return str(_check(status, body, "submit", (200, 201))["results"][0]["status"])


class LabelStudioFlavor:
    def __init__(self, base_url: str, project_id: int) -> None:
        self.base_url = base_url
        self.next_url = f"{base_url}/api/projects/{project_id}/next"
        self.project_id = project_id

    def auth_headers(self, token: str) -> dict[str, str]:
        return {**JSON_HEADERS, "Authorization": f"Token {token}"}

    async def next_task(self, transport: Transport, headers: dict[str, str]) -> Task | None:
        status, body = await transport.request("GET", self.next_url, headers, None)
        if status == 404:  # "no more tasks" (or a lock it cannot give): LS answers 404
            return None
        task_id = int(_check(status, body, "next", (200,))["id"])
        return Task(task_id, str(task_id))

    async def submit(self, transport: Transport, headers: dict[str, str], task: Task) -> str:
        url = f"{self.base_url}/api/tasks/{task.item_id}/annotations?project={self.project_id}"
        result = {
            "from_name": "label",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["abc"[task.item_id % 3]]},
        }
        payload = orjson.dumps({"result": [result], "lead_time": 1.2})
        status, body = await transport.request("POST", url, headers, payload)
        _check(status, body, "submit", (200, 201))
        return "accepted"


FLAVORS: dict[str, type[LabelfarmFlavor] | type[LabelStudioFlavor]] = {
    "labelfarm": LabelfarmFlavor,
    "label-studio": LabelStudioFlavor,
}


@dataclass
class Tally:
    """Everything the annotators record, shared by all of them (one event loop, no locks)."""

    overlap: int
    max_cycles: int | None
    cycles: int = 0
    started: int = 0
    empty: int = 0
    late: int = 0
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    holders: dict[int, set[int]] = field(default_factory=dict)
    submitted: set[tuple[int, int]] = field(default_factory=set)
    handed: int = 0
    overlap_violations: int = 0
    duplicate_violations: int = 0
    resumed: int = 0
    # latencies and cycles count from here (perf_counter): requests started during the
    # warm-up (connections opened, caches filled) are not measured
    measure_from: float = 0.0
    # with ``keep_samples``: (wall-clock time the request started, ms) of every measured
    # request, so a caller can take the latencies of a sub-window (while a job ran)
    samples: dict[str, list[tuple[float, float]]] | None = None

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail}"[:400])

    def handed_out(self, item_id: int, annotator: int) -> None:
        self.handed += 1
        if (item_id, annotator) in self.submitted:
            self.duplicate_violations += 1
        holders = self.holders.setdefault(item_id, set())
        if annotator in holders:
            self.resumed += 1
            return
        holders.add(annotator)
        if len(holders) > self.overlap:
            self.overlap_violations += 1

    def may_start(self) -> bool:
        if self.max_cycles is not None and self.started >= self.max_cycles:
            return False
        self.started += 1
        return True


async def _timed(tally: Tally, op: str, coro: Any) -> Any:
    t0, wall = time.perf_counter(), time.time()
    try:
        return await coro
    finally:
        if t0 >= tally.measure_from:
            ms = (time.perf_counter() - t0) * 1000.0
            (tally.next_ms if op == "next" else tally.submit_ms).append(ms)
            if tally.samples is not None:
                tally.samples[op].append((wall, ms))


async def annotator(
    index: int, token: str, flavor: Flavor, transport: Transport, tally: Tally, deadline: float
) -> None:
    headers = flavor.auth_headers(token)
    while time.perf_counter() < deadline and tally.may_start():
        measured = time.perf_counter() >= tally.measure_from
        try:
            task = await _timed(tally, "next", flavor.next_task(transport, headers))
            if task is None:
                tally.empty += 1
                return
            tally.handed_out(task.item_id, index)
            status = await _timed(tally, "submit", flavor.submit(transport, headers, task))
        except RequestFailed as exc:
            tally.error(exc.kind, exc.detail)
            await asyncio.sleep(0.05)
            continue
        except Timeout:
            tally.error("timeout", "")
            continue
        except OSError as exc:  # connection refused / reset
            tally.error(f"connection:{type(exc).__name__}", str(exc))
            await asyncio.sleep(0.05)
            continue
        tally.submitted.add((task.item_id, index))
        tally.late += status == "late"
        tally.cycles += measured


def _tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of the server process tree (psutil), so its CPU % covers the same window."""
    if not pid:
        return 0.0
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def latency_summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(q: float) -> float:
        if not ordered:
            return 0.0
        return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]

    mean = sum(ordered) / len(ordered) if ordered else 0.0
    return {
        "n": len(ordered),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": pct(100),
        "mean": mean,
    }


async def run(config: dict[str, Any]) -> dict[str, Any]:
    tokens: list[str] = config["tokens"]
    timeout_s = float(config["timeout_s"])
    transport: Transport = TRANSPORTS[config["client"]](timeout_s, len(tokens))
    flavor: Flavor = FLAVORS[config["flavor"]](config["base_url"], int(config["project_id"]))
    tally = Tally(overlap=int(config["overlap"]), max_cycles=config.get("max_cycles"))
    server_pid = config.get("server_pid")
    if config.get("keep_samples"):
        tally.samples = {"next": [], "submit": []}
    warmup_s = float(config.get("warmup_s", 0.0))
    start = time.perf_counter()
    tally.measure_from = start + warmup_s
    deadline = tally.measure_from + float(config["duration_s"])
    workers = [
        asyncio.create_task(annotator(i, token, flavor, transport, tally, deadline))
        for i, token in enumerate(tokens)
    ]
    await asyncio.sleep(warmup_s)
    server0 = _tree_cpu_seconds(server_pid)
    cpu0, t0 = time.process_time(), time.perf_counter()
    _, unfinished = await asyncio.wait(
        workers, timeout=float(config["duration_s"]) + 2 * timeout_s + 5
    )
    for worker in unfinished:
        worker.cancel()
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    server_cpu_s = _tree_cpu_seconds(server_pid) - server0
    await transport.close()
    return {
        "annotators": len(tokens),
        "client": config["client"],
        "cycles": tally.cycles,
        "wall_s": wall_s,
        "cycles_per_s": tally.cycles / wall_s if wall_s else 0.0,
        "client_cpu_s": cpu_s,
        "client_cpu_pct": 100.0 * cpu_s / wall_s if wall_s else 0.0,
        "client_cpu_us_per_cycle": 1e6 * cpu_s / tally.cycles if tally.cycles else 0.0,
        "server_cpu_pct": 100.0 * server_cpu_s / wall_s if wall_s else 0.0,
        "next_ms": latency_summary(tally.next_ms),
        "submit_ms": latency_summary(tally.submit_ms),
        "errors": dict(tally.errors),
        "error_samples": tally.error_samples,
        "cancelled": len(unfinished),
        "empty": tally.empty,
        "late": tally.late,
        "handed": tally.handed,
        "resumed": tally.resumed,
        "overlap_violations": tally.overlap_violations,
        "duplicate_violations": tally.duplicate_violations,
        "invariant_violations": tally.overlap_violations + tally.duplicate_violations,
        **({"samples": tally.samples} if tally.samples is not None else {}),
    }


def main() -> None:
    config = orjson.loads(sys.stdin.buffer.read())
    if config.get("uvloop", True):
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    result = asyncio.run(run(config))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()

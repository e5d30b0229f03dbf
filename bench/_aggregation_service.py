"""The labelfarm service of ``bench/aggregation.py``: a project labelled by the simulated
annotators through the real API in process, and its export read back as one run's labels."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from _crowd import Annotator
from labelfarm.client import AppTransport, Client
from labelfarm.sample_data import FASHION_CLASSES
from labelfarm.services import users, workspaces
from labelfarm.settings import Settings
from labelfarm.web.app import create_app

SCHEMA = {"fields": [{"name": "label", "type": "choice", "options": list(FASHION_CLASSES)}]}
CLASS_INDEX = {name: k for k, name in enumerate(FASHION_CLASSES)}


# -- the service ---------------------------------------------------------------------------------
class Service:
    """labelfarm in process, a manager and one token per simulated annotator."""

    def __init__(self, tmp: Path, crowd: list[Annotator]) -> None:
        settings = Settings(
            data_dir=tmp / "data", database_url=f"sqlite:///{tmp}/lf.db", secret_key="bench"
        )
        self.app = create_app(settings)
        self.transport = AppTransport(self.app)
        db = self.app.state.ctx.db
        now = time.time()
        self.workspace = db.run(workspaces.create_workspace, slug="bench", name="Bench", now=now)
        self.crowd = crowd
        self.pseudonym_of: dict[str, int] = {}  # pseudonym -> annotator index
        self.manager = self._client(db, "manager", "manager", now)
        self.annotators = [
            self._client(db, a.name, "annotator", now, n) for n, a in enumerate(crowd)
        ]

    def _client(
        self, db: Any, name: str, role: str, now: float, index: int | None = None
    ) -> Client:
        user = db.run(
            users.register,
            username=name,
            password=None,
            now=now,
            workspace_id=self.workspace["id"],
            role=role,
        )
        if index is not None:
            self.pseudonym_of[user["pseudonym"]] = index
        token = db.run(users.create_token, user_id=user["id"], name="bench", now=now)["token"]
        return Client("http://bench", token=token, transport=self.transport)

    def project(self, name: str, indexes: np.ndarray, **settings: Any) -> int:
        pid = int(
            self.manager.create_project(self.workspace["id"], name, schema=SCHEMA, **settings)["id"]
        )
        body = "".join(json.dumps({"data": {"index": int(i)}}) + "\n" for i in indexes)
        self.manager.import_bytes(pid, body.encode(), format="jsonl")
        return pid

    def label(self, pid: int, truth: np.ndarray, seed: int, refit_every: int = 0) -> int:
        """Every annotator takes turns (next, then submit) until nobody gets work."""
        done = [0] * len(self.crowd)
        rounds = 0
        while True:
            rounds += 1
            busy = False
            order = np.random.default_rng([seed, rounds]).permutation(len(self.crowd))
            for n in order.tolist():
                a = self.crowd[n]
                want = a.per_turn if a.cap is None else min(a.per_turn, a.cap - done[n])
                if want <= 0:
                    continue
                tasks = self.annotators[n].next(pid, n=want)
                if not tasks:
                    continue
                busy = True
                batch = []
                for t in tasks:
                    index = int(t["data"]["index"])
                    answer = a.answer(int(truth[index]), index, n, seed)
                    label = FASHION_CLASSES[answer]
                    batch.append(
                        {"id": uuid.uuid4().hex, "task": t["task"], "value": {"label": label}}
                    )
                self.annotators[n].submit(pid, batch)
                done[n] += len(batch)
            if refit_every and rounds % refit_every == 0:
                self.refit(pid)
            if not busy:
                return sum(done)

    def refit(self, pid: int) -> None:
        self.manager.request("POST", f"/projects/{pid}/quality/refit")

    def export(self, pid: int) -> list[dict[str, Any]]:
        raw = b"".join(self.manager.export_stream(pid, format="jsonl"))
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def close(self) -> None:
        self.transport.close()
        self.app.state.ctx.db.dispose()


# -- one run's labels ----------------------------------------------------------------------------
class Run:
    """The exported labels of one project, in long format, aligned with the true classes."""

    def __init__(self, records: list[dict[str, Any]], position: dict[int, int], service: Service):
        self.items = sorted(position[r["data"]["index"]] for r in records)
        rows = []
        self.labelfarm = np.full(len(position), -1)
        self.order: dict[int, list[tuple[int, int]]] = {}
        for r in records:
            item = position[r["data"]["index"]]
            anns = sorted(r["annotations"], key=lambda a: a["id"])
            for a in anns:
                worker = service.pseudonym_of[a["annotator"]]
                label = CLASS_INDEX[a["value"]["label"]]
                rows.append((item, worker, label))
                self.order.setdefault(item, []).append((worker, label))
            if r["label"] and "label" in r["label"]["value"]:
                self.labelfarm[item] = CLASS_INDEX[r["label"]["value"]["label"]]
        self.long = np.array(rows, dtype=np.int64).reshape(-1, 3)

    @property
    def labels_per_item(self) -> float:
        return len(self.long) / max(1, len(self.items))

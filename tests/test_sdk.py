"""The Python SDK covers projects, import, next, submit and export."""

from __future__ import annotations

import orjson

import labelfarm
from labelfarm import Client, LabelfarmAPIError


def test_exported_names():
    assert set(labelfarm.__all__) == {"AppTransport", "Client", "LabelfarmAPIError", "__version__"}


def test_sdk_round_trip(world, tmp_path):
    root: Client = world.user("root", superuser=True)["client"]
    ws = root.create_workspace("sdk", "SDK")
    ann_user = root.create_user("ann", "a long password")
    root.set_role(ws["id"], ann_user["id"], "annotator")
    ann = world.client(root.create_token(ann_user["id"], "laptop"))
    schema = {
        "fields": [
            {"name": "label", "type": "choice", "options": ["a", "b"]},
            {"name": "boxes", "type": "bbox", "labels": ["x"], "required": False},
        ]
    }
    project = root.create_project(ws["id"], "sdk project", schema=schema, overlap=1)
    assert root.project(project["id"])["fields"][1]["labels"] == ["x"]
    path = tmp_path / "items.csv"
    path.write_text("text\nfirst\nsecond\n")
    assert root.import_file(project["id"], path)["n_items"] == 2
    tasks = ann.next(project["id"], n=2)
    results = ann.submit(
        project["id"],
        [
            {
                "task": t["task"],
                "value": {"label": "b", "boxes": [{"x": 1, "y": 2, "w": 3, "h": 4, "label": "x"}]},
            }
            for t in tasks
        ],
    )
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    out = root.export(project["id"], tmp_path / "out.jsonl")
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert rows[0]["label"]["value"]["boxes"][0]["w"] == 3.0
    assert rows[0]["annotations"][0]["annotator"] == ann_user["pseudonym"]
    assert root.progress(project["id"])["items"]["done"] == 2
    try:
        ann.export(project["id"], tmp_path / "nope.jsonl")
    except LabelfarmAPIError as exc:
        assert exc.status == 403
    else:
        raise AssertionError("an annotator may not export")

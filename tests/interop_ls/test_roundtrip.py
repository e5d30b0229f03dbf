"""Label Studio → labelfarm → Label Studio, against a real Label Studio 1.23.2.

For each case of :mod:`ls_cases`: a Label Studio project is made from the label config, its
tasks created (images uploaded, texts imported) and annotated through the API the labeling
page uses, then exported with the Export button's JSON. labelfarm makes a project from the
same label config, imports that file, and exports it in Label Studio format (annotators
carried back); a fresh Label Studio project imports labelfarm's file as its import dialog
does. Read back through Label Studio's API, every task must hold the annotations drawn:
same annotators, times, results with their region ids, box values within 1e-6. Annotation
ids and timestamps are Label Studio's own and may differ.

In between, labelfarm's own values (what its annotators and reviewers see, its JSONL
export) must say what Label Studio showed: choices in their order, spans by offsets, boxes
with the same corners in pixels, so a round trip cannot pass by carrying Label Studio's
values through untouched while labelfarm shows something else.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ls_cases import CASES, Case, box_corners, png
from ls_server import LabelStudioAPI

from labelfarm.client import LabelfarmAPIError

TOLERANCE = 1e-6
# what Label Studio itself writes on an annotation and may differ between two projects
_OWN_KEYS = {
    "id",
    "created_at",
    "updated_at",
    "created_ago",
    "created_username",
    "task",
    "project",
    "import_id",
    "bulk_created",
    "updated_by",
    "last_action",
    "last_created_by",
    "draft_created_at",
    "parent_prediction",
    "parent_annotation",
    "unique_id",
    "result_count",
    "prediction",
}
# a result drawn without the image's size may come back with the true size added
_SIZE_KEYS = {"original_width", "original_height", "image_rotation"}


@dataclass
class Source:
    """A case drawn in Label Studio."""

    tasks: list[dict[str, Any]]  # Label Studio's tasks, in the case's order
    images: dict[str, bytes]  # the bytes uploaded, by image URL
    export: bytes  # the Export button's JSON


@pytest.fixture(scope="module")
def sources(label_studio: LabelStudioAPI, ls_users: dict[str, int]) -> Callable[[Case], Source]:
    """Each case drawn once, whichever labelfarm database the test runs on."""
    drawn: dict[str, Source] = {}

    def source(case: Case) -> Source:
        if case.name not in drawn:
            drawn[case.name] = _draw(label_studio, case, ls_users)
        return drawn[case.name]

    return source


def _draw(ls: LabelStudioAPI, case: Case, users: dict[str, int]) -> Source:
    """A Label Studio project with the case's tasks, annotated as its labeling page does."""
    project = ls.create_project(f"{case.name} drawn", case.config)
    images = {f"img{n}.png": png(t.size, n) for n, t in enumerate(case.tasks) if t.size}
    if images:
        ls.upload(project, [(name, data, "image/png") for name, data in images.items()])
    texts = [{"data": t.data} for t in case.tasks if t.data is not None]
    if texts:
        ls.upload(project, [("tasks.json", json.dumps(texts).encode(), "application/json")])
    tasks = _in_case_order(case, ls.tasks(project))
    served: dict[str, bytes] = {}
    for task, spec in zip(tasks, case.tasks, strict=True):
        if spec.size is not None:
            url = task["data"]["image"]
            served[url] = next(data for name, data in images.items() if url.endswith(f"-{name}"))
        for drawn in spec.annotations:
            stored = ls.annotate(
                task["id"],
                drawn.result,
                completed_by=users[drawn.annotator],
                lead_time=drawn.lead_time,
            )
            assert stored["result"] == drawn.result  # Label Studio keeps what was drawn
        for result in spec.predictions:
            ls.predict(task["id"], result, model_version="detector-v3", score=0.75)
    return Source(tasks, served, ls.export(project))


def _in_case_order(case: Case, made: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio's tasks in the order of the case's tasks (images by file name)."""
    out = []
    for n, task in enumerate(case.tasks):
        if task.size is not None:
            out.append(next(t for t in made if t["data"].get("image", "").endswith(f"-img{n}.png")))
        else:
            out.append(next(t for t in made if t["data"] == task.data))
    return out


def _through_labelfarm(
    world: Any, case: Case, ls_file: bytes, tmp: Path
) -> tuple[bytes, list[dict[str, Any]]]:
    """Import Label Studio's export into a labelfarm project made from the label config;
    the project's Label Studio export (annotators carried back), and its items as labelfarm
    holds them (its JSONL export)."""
    ws = world.workspace()
    manager = world.user("migrator", role="manager", workspace=ws)
    lf = manager["client"]
    project = lf.create_project(ws["id"], case.name, schema=case.config)
    source = tmp / "label-studio-export.json"
    source.write_bytes(ls_file)
    try:
        report = lf.import_file(project["id"], source, format="labelstudio")
    except LabelfarmAPIError as exc:
        pytest.fail(f"labelfarm refused Label Studio's export: {exc}: {exc.details}")
    drawn = sum(len(t.annotations) for t in case.tasks)
    predicted = sum(len(t.predictions) for t in case.tasks)
    assert (report["n_items"], report["n_annotations"]) == (len(case.tasks), drawn), report
    # the Export button lists predictions by id only: dropped, and said so
    dropped = [n for n in report["notes"] if "prediction" in n["reason"]]
    assert sum(n["count"] for n in dropped) == predicted, report
    held = b"".join(lf.export_stream(project["id"], format="jsonl"))
    back = b"".join(lf.export_stream(project["id"], format="labelstudio", completed_by={}))
    return back, [json.loads(line) for line in held.splitlines()]


def _close(a: Any, b: Any, path: str) -> list[str]:
    """Where two JSON values differ (numbers within TOLERANCE)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} → {b!r}"]
    if isinstance(a, int | float) and isinstance(b, int | float):
        return (
            [] if math.isclose(a, b, rel_tol=0, abs_tol=TOLERANCE) else [f"{path}: {a!r} → {b!r}"]
        )
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: missing" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}: added {b[k]!r}" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            out += _close(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {a!r} → {b!r}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _close(x, y, f"{path}[{i}]")
        ]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} → {b!r}"]


def _result_diff(
    drawn: dict[str, Any], back: dict[str, Any], size: tuple[int, int] | None, path: str
) -> list[str]:
    """A result read back against the result drawn; image sizes the drawing did not give
    may be added, if they are the image's true size and no rotation of it."""
    back = dict(back)
    if size is not None and not _SIZE_KEYS & drawn.keys():
        added = {k: back.pop(k) for k in _SIZE_KEYS & back.keys()}
        truth = {"original_width": size[0], "original_height": size[1], "image_rotation": 0}
        out = [
            f"{path}.{k}: added {v!r}, the image's is {truth[k]!r}"
            for k, v in added.items()
            if v != truth[k]
        ]
        return out + _close(drawn, back, path)
    return _close(drawn, back, path)


def _annotation_diff(
    drawn: dict[str, Any], back: dict[str, Any], size: tuple[int, int] | None, where: str
) -> list[str]:
    mine = {k: v for k, v in drawn.items() if k not in _OWN_KEYS and k != "result"}
    theirs = {k: v for k, v in back.items() if k not in _OWN_KEYS and k != "result"}
    out = _close(mine, theirs, where)
    before = {r["id"]: r for r in drawn["result"]}
    after = {r.get("id"): r for r in back["result"]}
    if len(after) != len(back["result"]):
        out.append(
            f"{where}.result: region ids not unique: {[r.get('id') for r in back['result']]}"
        )
    for rid in before.keys() - after.keys():
        out.append(f"{where}.result: region {rid!r} lost (ids back: {sorted(map(str, after))})")
    for rid in after.keys() - before.keys():
        out.append(f"{where}.result: region {rid!r} added: {after[rid]!r}")
    for rid in before.keys() & after.keys():
        out += _result_diff(before[rid], after[rid], size, f"{where}.result[{rid}]")
    return out


def _regions(annotation: dict[str, Any]) -> tuple[str, ...]:
    """An annotation's region ids: what tells it apart on both sides (ids are new)."""
    return tuple(sorted(str(r.get("id")) for r in annotation["result"]))


def _task_diff(
    ls: LabelStudioAPI, before: dict[str, Any], after: dict[str, Any], size: tuple[int, int] | None
) -> list[str]:
    where = f"task {before['data']}"
    drawn = ls.annotations(before["id"])
    back = ls.annotations(after["id"])
    by_regions = {_regions(a): a for a in back}
    out = []
    if len(back) != len(drawn):
        out.append(f"{where}: {len(drawn)} annotations drawn, {len(back)} back")
    for a in drawn:
        match = by_regions.get(_regions(a))
        if match is None:
            out.append(f"{where}: annotation with regions {_regions(a)} not back; back: {back!r}")
            continue
        out += _annotation_diff(a, match, size, f"{where} annotation {list(_regions(a))}")
    return out


def _expected(result: dict[str, Any]) -> Any:
    """What labelfarm should hold for a Label Studio result, for a person reading it there:
    choices in the order given, text entries as lines, spans by offsets, boxes by their
    corners in pixels (when the result gives the image's size)."""
    v = result["value"]
    if result["type"] == "choices":
        return v["choices"]
    if result["type"] == "textarea":
        return "\n".join(v["text"])
    if result["type"] == "labels":
        return {"label": v["labels"][0], "start": v["start"], "end": v["end"]}
    corners = None
    if "original_width" in result:
        sx, sy = result["original_width"] / 100, result["original_height"] / 100
        xywh = (v["x"] * sx, v["y"] * sy, v["width"] * sx, v["height"] * sy)
        corners = box_corners(*xywh, v.get("rotation", 0), "corner")
    return {"label": v["rectanglelabels"][0], "corners": corners}


def _held(shape: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """A labelfarm shape in the terms of :func:`_expected`."""
    if "start" in want:
        return {k: shape.get(k) for k in want}
    corners = None
    if want["corners"] is not None:
        xywh = (shape["x"], shape["y"], shape["w"], shape["h"])
        corners = box_corners(*xywh, shape.get("rotation", 0), "centre")
    return {"label": shape["label"], "corners": corners}


def _held_diff(case: Case, source: Source, held: list[dict[str, Any]]) -> list[str]:
    """Where labelfarm's own values (what its annotators and reviewers see) differ from
    what was drawn in Label Studio; annotations in the order drawn."""
    out = []
    by_data = {json.dumps(item["data"], sort_keys=True): item for item in held}
    for task, spec in zip(source.tasks, case.tasks, strict=True):
        item = by_data[json.dumps(task["data"], sort_keys=True)]
        if len(item["annotations"]) != len(spec.annotations):
            out.append(f"labelfarm {task['data']}: {len(item['annotations'])} annotations")
            continue
        for drawn, annotation in zip(spec.annotations, item["annotations"], strict=True):
            value = annotation["value"]
            for r in drawn.result:
                where = f"labelfarm {task['data']} {r['from_name']} {r['id']}"
                want, got = _expected(r), value.get(r["from_name"])
                if isinstance(want, dict):  # a region: find it by its id
                    shapes = [s for s in got or [] if (s.get("meta") or {}).get("id") == r["id"]]
                    got = _held(shapes[0], want) if len(shapes) == 1 else shapes
                elif r["type"] == "choices" and isinstance(got, str):
                    got = [got]
                out += _close(want, got, where)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_label_studio_round_trip(
    case: Case,
    label_studio: LabelStudioAPI,
    sources: Callable[[Case], Source],
    world: Any,
    tmp_path: Path,
) -> None:
    ls = label_studio
    source = sources(case)
    back_file, held = _through_labelfarm(world, case, source.export, tmp_path)
    problems = _held_diff(case, source, held)

    target = ls.create_project(f"{case.name} back {uuid.uuid4().hex[:6]}", case.config)
    ls.upload(target, [("labelfarm.json", back_file, "application/json")])
    after_by_data = {json.dumps(t["data"], sort_keys=True): t for t in ls.tasks(target)}
    assert len(after_by_data) == len(source.tasks), f"tasks back: {list(after_by_data)}"
    for task, spec in zip(source.tasks, case.tasks, strict=True):
        after = after_by_data.get(json.dumps(task["data"], sort_keys=True))
        if after is None:
            problems.append(f"task {task['data']} not back (data changed?): {list(after_by_data)}")
            continue
        problems += _task_diff(ls, task, after, spec.size)
        if spec.size is not None:  # the new project still shows the uploaded image
            assert ls.media(after["data"]["image"]) == source.images[task["data"]["image"]]
    assert not problems, "\n".join(problems)

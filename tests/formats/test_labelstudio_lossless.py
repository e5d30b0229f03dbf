"""Label Studio in both directions without loss: what Label Studio's own export holds comes
back as it was, boxes drawn in labelfarm land where they were drawn, and what cannot be
kept is refused with a located reason or named in the import report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text

from conftest import close  # type: ignore[import-not-found]
from labelfarm.errors import InvalidInput
from labelfarm.services.exports import export_stream
from labelfarm.services.imports import list_imports

CSV_TEST = "labelstudio/label-studio-sdk/csv_test.json"
KEYPOINTS = "labelstudio/label-studio-sdk/data_keypoints.json"


def _write(tmp: Path, tasks: Any, name: str = "tasks.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(tasks))
    return path


def _export(lab: Any, project: Any, **options: Any) -> list[dict[str, Any]]:
    chunks, _ = export_stream(
        lab.world.db,
        project,
        "labelstudio",
        now=lab.world.clock(),
        actor_id=None,
        options=options or None,
    )
    return json.loads(b"".join(chunks))


def _paths(value: Any, path: str = "") -> dict[str, str]:
    """Key path → JSON text of every leaf; list elements with an ``id`` keyed by it."""
    out: dict[str, str] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(_paths(v, f"{path}.{k}"))
    elif isinstance(value, list) and value:
        keyed = all(isinstance(v, dict) and "id" in v for v in value)
        for i, v in enumerate(value):
            out.update(_paths(v, f"{path}[{v['id'] if keyed else i}]"))
    else:
        out[path] = json.dumps(value)
    return out


def _box(label: str, **geometry: Any) -> dict[str, Any]:
    return {
        "id": "r1",
        "from_name": "boxes",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 640,
        "original_height": 480,
        "value": {**geometry, "rectanglelabels": [label]},
    }


# -- Label Studio's Export button -------------------------------------------------------------
def test_predictions_given_by_id_are_dropped_and_counted(lab, tmp_path):
    tasks = [
        {"id": 1, "data": {"text": "a"}, "predictions": [41, 42]},
        {"id": 2, "data": {"text": "b"}, "predictions": [43]},
    ]
    project = lab.project({"fields": [{"name": "label", "type": "choice", "options": ["x"]}]})
    result = lab.import_(project, _write(tmp_path, tasks), "labelstudio")
    assert (result.n_items, result.n_predictions) == (2, 0)
    [note] = [n for n in result.to_dict()["notes"] if "by id" in n["reason"]]
    assert note["count"] == 3
    [kept] = lab.world.db.run(list_imports, project.id)
    assert kept["notes"] == result.notes  # the import's report keeps them


def test_a_whole_export_comes_back_as_it_was(lab, interop):
    """Every key path of Label Studio's export is in labelfarm's export with the same text
    (percentages to the last digit, region ids, result order, annotation ids), except who
    did what, which the import report names and a completed_by mapping brings back."""
    for rel in (CSV_TEST, KEYPOINTS):
        src = interop / rel
        project = lab.project(lab.guess("labelstudio", src))
        result = lab.import_(project, src, "labelstudio")
        noted = {n["reason"].split(":")[0].split(".")[-1] for n in result.notes}
        source = _paths(json.loads(src.read_text()))
        plain = _paths(_export(lab, project))
        lost = {p for p, v in source.items() if plain.get(p) != v}
        assert lost and all(re.search(r"\.(\w+)(\[|\.|$)", p) for p in lost)
        assert {re.findall(r"\.(\w+)", p)[-1] in noted or _under(p, noted) for p in lost} == {
            True
        }, sorted(lost)
        assert not any("completed_by" in p for p in plain)  # pseudonyms only by default
        mapped = _paths(_export(lab, project, completed_by={}))
        assert {p: v for p, v in source.items() if mapped.get(p) != v} == {}


def _under(path: str, keys: set[str]) -> bool:
    return any(f".{k}" in path for k in keys)


# -- image sizes: boxes drawn in labelfarm -----------------------------------------------------
@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    Image.new("RGB", (200, 100), "white").save(folder / "a b.png")
    return folder


def test_boxes_drawn_in_labelfarm_export_in_percent_of_the_stored_size(lab, image_folder):
    schema = {
        "fields": [{"name": "boxes", "type": "rectangle", "labels": ["cat"]}],
        "data": {"image": "image"},
    }
    project = lab.project(schema)
    lab.import_(project, image_folder, "folder")
    ann = lab.world.user("ann", role="annotator", workspace=lab.ws)
    [task] = ann["client"].next(project.id)
    box = {"x": 20, "y": 10, "w": 100, "h": 50, "label": "cat"}
    ann["client"].submit(project.id, [{"task": task["task"], "value": {"boxes": [box]}}])

    [exported] = _export(lab, project)
    [region] = exported["annotations"][0]["result"]
    assert (region["original_width"], region["original_height"]) == (200, 100)
    close(
        {k: region["value"][k] for k in ("x", "y", "width", "height")},
        {"x": 10, "y": 10, "width": 50, "height": 50},
    )
    # a file imported from a folder: a path Label Studio's local-files serving resolves
    assert exported["data"]["image"] == "/data/local-files/?d=a%20b.png"
    [again] = _export(lab, project, media_url="https://cdn.example/shots/")
    assert again["data"]["image"] == "https://cdn.example/shots/a%20b.png"


def test_sizes_of_images_imported_before_are_filled_in(lab, image_folder):
    from labelfarm.services.image_sizes import fill_image_sizes

    project = lab.project({"fields": [{"name": "boxes", "type": "bbox", "labels": ["cat"]}]})
    lab.import_(project, image_folder, "folder")
    with lab.world.db.begin("write") as tx:
        tx.execute(text("UPDATE items SET image_width = NULL, image_height = NULL"))
    assert fill_image_sizes(lab.world.db, lab.world.ctx.media) == 1
    with lab.world.db.begin("read") as tx:
        sizes = tx.execute(text("SELECT image_width, image_height FROM items")).all()
    assert [tuple(s) for s in sizes] == [(200, 100)]


def test_coco_width_null_takes_the_size_from_the_image(lab, image_folder):
    coco = {
        "images": [{"id": 1, "file_name": "a b.png", "width": None, "height": None}],
        "annotations": [],
        "categories": [{"id": 1, "name": "cat"}],
    }
    path = image_folder / "instances.json"
    path.write_text(json.dumps(coco))
    project = lab.project({"fields": [{"name": "boxes", "type": "rectangle", "labels": ["cat"]}]})
    assert lab.import_(project, path, "coco").n_items == 1
    [image] = json.loads(lab.export(project, "coco"))["images"]
    assert (image["width"], image["height"]) == (200, 100)


# -- bbox fields -------------------------------------------------------------------------------
def test_bbox_keeps_the_image_size_and_refuses_a_rotated_box(lab, tmp_path):
    project = lab.project({"fields": [{"name": "boxes", "type": "bbox", "labels": ["cat"]}]})
    upright = _box("cat", x=10, y=20, width=30, height=40, rotation=0)
    lab.import_(
        project,
        _write(
            tmp_path,
            [
                {
                    "id": 1,
                    "data": {"image": "u.jpg"},
                    "annotations": [{"id": 5, "result": [upright]}],
                }
            ],
        ),
        "labelstudio",
    )
    [value] = lab.values(project)["1"]
    close([value["boxes"][0][k] for k in "xywh"], [64, 96, 192, 192])
    [region] = _export(lab, project)[0]["annotations"][0]["result"]
    assert region == upright

    rotated = _box("cat", x=10, y=20, width=30, height=40, rotation=30)
    path = _write(
        tmp_path,
        [{"id": 2, "data": {"image": "r.jpg"}, "annotations": [{"result": [rotated]}]}],
        "rotated.json",
    )
    [problem] = lab.fails(lab.project(project.schema.raw), path, "labelstudio")
    assert problem["field"] == "result[0].value.rotation"
    assert "rectangle" in problem["reason"] and problem["location"].startswith("rotated.json")


def test_a_rotated_rectangle_round_trips_exactly(lab, tmp_path):
    project = lab.project({"fields": [{"name": "boxes", "type": "rectangle", "labels": ["cat"]}]})
    rotated = _box("cat", x=10.123456789, y=20.1, width=30.7, height=40.3, rotation=30)
    path = _write(
        tmp_path, [{"id": 1, "data": {"image": "r.jpg"}, "annotations": [{"result": [rotated]}]}]
    )
    lab.import_(project, path, "labelstudio")
    [region] = _export(lab, project)[0]["annotations"][0]["result"]
    assert region == rotated


# -- tag names, ids, annotators ----------------------------------------------------------------
CONFIG = """<View>
  <Image name="img" value="$photo"/>
  <Choices name="quality" toName="img" choice="multiple">
    <Choice value="sharp"/><Choice value="blurry"/><Choice value="dark"/>
  </Choices>
  <TextArea name="note" toName="img"/>
  <RectangleLabels name="boxes" toName="img">
    <Label value="cat"/><Label value="dog"/>
  </RectangleLabels>
</View>"""


def _config_task(completed_by: int = 12) -> dict[str, Any]:
    return {
        "id": 7,
        "data": {"photo": "/data/upload/1/a.jpg"},
        "annotations": [
            {
                "id": 17,
                "completed_by": completed_by,
                "result": [
                    {
                        "id": "q1",
                        "from_name": "quality",
                        "to_name": "img",
                        "type": "choices",
                        "value": {"choices": ["dark", "sharp"]},
                    },
                    {
                        "id": "n1",
                        "from_name": "note",
                        "to_name": "img",
                        "type": "textarea",
                        "value": {"text": ["first entry", "second entry:\nof two lines"]},
                    },
                ],
            }
        ],
    }


def test_tag_names_ids_and_order_come_back(lab, tmp_path):
    from labelfarm.formats.labelstudio_config import schema_from_label_config

    project = lab.project(schema_from_label_config(CONFIG))
    lab.import_(project, _write(tmp_path, [_config_task()]), "labelstudio")
    [value] = lab.values(project)["7"]
    assert value["quality"] == ["dark", "sharp"]  # the order chosen, not the options'
    [task] = _export(lab, project)
    [ann] = task["annotations"]
    assert ann["id"] == 17
    assert ann["result"] == _config_task()["annotations"][0]["result"]

    # labels made in labelfarm name the tags of the label config too
    user = lab.world.user("ann", role="annotator", workspace=lab.ws)
    [lease] = user["client"].next(project.id)
    value = {"quality": ["blurry"], "note": "one\ntwo", "boxes": []}
    user["client"].submit(project.id, [{"task": lease["task"], "value": value}])
    [task] = _export(lab, project)
    mine = task["annotations"][-1]["result"]
    assert {(r["from_name"], r["to_name"]) for r in mine} == {("quality", "img"), ("note", "img")}
    assert next(r for r in mine if r["from_name"] == "note")["value"]["text"] == ["one", "two"]


def test_a_to_name_the_schema_does_not_know_is_refused(lab, tmp_path):
    schema = {
        "fields": [{"name": "label", "type": "choice", "options": ["x"]}],
        "data": {"text": "text"},
    }
    task = {
        "data": {"text": "a"},
        "annotations": [
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "review",
                        "type": "choices",
                        "value": {"choices": ["x"]},
                    }
                ]
            }
        ],
    }
    [problem] = lab.fails(lab.project(schema), _write(tmp_path, [task]), "labelstudio")
    assert problem["field"] == "result[0].to_name" and "'text'" in problem["reason"]


def test_annotators_go_back_only_with_a_mapping(lab, tmp_path):
    from labelfarm.formats.labelstudio_config import schema_from_label_config

    project = lab.project(schema_from_label_config(CONFIG))
    lab.import_(project, _write(tmp_path, [_config_task(completed_by=12)]), "labelstudio")
    user = lab.world.user("ann", role="annotator", workspace=lab.ws)
    [lease] = user["client"].next(project.id)
    user["client"].submit(project.id, [{"task": lease["task"], "value": {"quality": ["dark"]}}])

    [plain] = _export(lab, project)
    assert all("completed_by" not in a for a in plain["annotations"])
    assert all(a["labelfarm_annotator"] for a in plain["annotations"])
    [mapped] = _export(lab, project, completed_by={"ann": 3})
    assert [a["completed_by"] for a in mapped["annotations"]] == [12, 3]
    with pytest.raises(InvalidInput, match="nobody"):
        _export(lab, project, completed_by={"nobody": 4})


def test_a_client_may_not_export_identities(world, tmp_path):
    from labelfarm.client import LabelfarmAPIError

    ws = world.workspace()
    project = world.project(ws)
    client = world.user("cli", role="client", workspace=ws)["client"]
    manager = world.user("mgr", role="manager", workspace=ws)["client"]
    ok = b"".join(manager.export_stream(project.id, format="labelstudio", completed_by={}))
    assert json.loads(ok) == []
    with pytest.raises(LabelfarmAPIError) as refused:
        b"".join(client.export_stream(project.id, format="labelstudio", completed_by={}))
    assert refused.value.status == 403
    assert json.loads(b"".join(client.export_stream(project.id, format="labelstudio"))) == []


# -- what another tool's labels may leave out --------------------------------------------------
def test_an_empty_result_is_a_valid_answer_for_a_required_field(lab, tmp_path):
    schema = {
        "fields": [
            {"name": "boxes", "type": "rectangle", "labels": ["cat"]},
            {"name": "kind", "type": "choice", "options": ["a", "b"]},
        ]
    }
    tasks = [{"id": 1, "data": {"image": "x.jpg"}, "annotations": [{"result": []}]}]
    project = lab.project(schema)
    lab.import_(project, _write(tmp_path, tasks), "labelstudio")
    assert lab.values(project)["1"] == [{"boxes": []}]  # "no objects"; no kind given
    [task] = _export(lab, project)
    assert task["annotations"][0]["result"] == []


def test_paragraph_labels_are_refused_in_plain_words(lab, interop, tmp_path):
    task = {
        "data": {"dialogue": [{"author": "a", "text": "hi"}]},
        "annotations": [
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "dialogue",
                        "type": "paragraphlabels",
                        "value": {"start": "0", "end": "0", "paragraphlabels": ["greeting"]},
                    }
                ]
            }
        ],
    }
    schema = {"fields": [{"name": "label", "type": "choice", "options": ["greeting"]}]}
    [problem] = lab.fails(lab.project(schema), _write(tmp_path, [task]), "labelstudio")
    assert problem["field"] == "result[0].type"
    assert "paragraphlabels" in problem["reason"] and "dialogue" in problem["reason"]
    assert "Error" not in problem["reason"] and "(" in problem["reason"]


def test_people_stay_out_of_every_export_without_a_mapping(lab, interop):
    src = interop / CSV_TEST
    project = lab.project(lab.guess("labelstudio", src))
    lab.import_(project, src, "labelstudio")
    for fmt in ("labelstudio", "jsonl"):
        assert b"heartex.com" not in lab.export(project, fmt), fmt
    assert "hakan@heartex.com" in json.dumps(_export(lab, project, completed_by={}))

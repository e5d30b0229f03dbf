"""What other tools' files hold is kept as given: a ``bbox`` field keeps the attributes,
group and meta of COCO and CVAT objects; numbers converted on import (VOC radians, YOLO
normalised coordinates, CVAT corners) are written back with the decimals that were read;
problems point at the line of the label file; a truncated JSON says so in words."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import orjson
import pytest
import yaml
from PIL import Image

from labelfarm.errors import InvalidInput


def _bbox_schema(labels: list[str]) -> dict:
    return {"fields": [{"name": "boxes", "type": "bbox", "labels": labels, "required": False}]}


def _with_bbox(guessed: dict) -> dict:
    """The guessed schema with its boxes in a ``bbox`` field instead of a rectangle one."""
    return {
        "fields": [
            {"name": f["name"], "type": "bbox", "labels": f["labels"], "required": False}
            if f["type"] == "rectangle"
            else f
            for f in guessed["fields"]
        ]
    }


def test_a_bbox_field_keeps_what_cvat_gives_a_box(lab, interop, tmp_path):
    path = interop / "cvat/datumaro-export_project/annotations.xml"
    project = lab.project(_with_bbox(lab.guess("cvat", path)))
    lab.import_(project, path, "cvat")
    boxes = [b for vs in lab.values(project).values() for v in vs for b in v.get("boxes", [])]
    occluded = [b for b in boxes if (b.get("meta") or {}).get("occluded") == 1]
    assert occluded and all(b["meta"]["z_order"] == 1 for b in occluded)
    assert any(b.get("attributes") for b in boxes)
    exported = lab.export(project, "cvat").decode()
    assert exported.count('occluded="1"') == path.read_text().count('occluded="1"')


def test_a_bbox_field_keeps_coco_iscrowd_ids_and_extra_keys(lab, interop):
    path = interop / "coco/label-studio-sdk/coco_import_input.json"
    project = lab.project(_with_bbox(lab.guess("coco", path)))
    lab.import_(project, path, "coco")

    source = orjson.loads(path.read_bytes())
    back = {a["id"]: a for a in orjson.loads(lab.export(project, "coco"))["annotations"]}
    for ann in source["annotations"]:
        for key in ("iscrowd", "isbbox", "color", "metadata", "bbox"):
            if key in ann:
                assert back[ann["id"]][key] == ann[key], key


def test_a_voc_rotated_box_keeps_its_angle_text(lab, interop, tmp_path):
    path = tmp_path / "demo.xml"  # roLabelImg's demo, one angle as the issue found it
    original = (interop / "voc/roLabelImg/demo.xml").read_text()
    path.write_text(original.replace("<angle>3.039229</angle>", "<angle>2.632232</angle>"))
    project = lab.project(lab.guess("voc", path))
    lab.import_(project, path, "voc")
    text = _voc_xml(lab, project, tmp_path / "1")
    angles = ["<angle>2.632232</angle>", "<angle>2.434159</angle>"]  # not 2.6322320000000006
    assert all(a in text for a in angles)
    # again: an export imported again writes the same text
    again = tmp_path / "again.xml"
    again.write_text(text)
    second = lab.project(lab.guess("voc", again))
    lab.import_(second, again, "voc")
    assert all(a in _voc_xml(lab, second, tmp_path / "2") for a in angles)


def _voc_xml(lab, project, dest: Path) -> str:
    out = lab.unzip(lab.export(project, "voc"), dest)
    [xml] = sorted((out / "Annotations").glob("*.xml"))
    return xml.read_text()


def test_an_edited_box_is_written_from_its_new_numbers(lab, tmp_path):
    from labelfarm.formats.objects import keep_text, text_as_read

    box = keep_text({"kind": "box", "x": 1.5, "y": 2, "w": 3, "h": 4}, "voc", ["a"])
    shown = {
        "kind": "box",
        "x": 1.5,
        "y": 2.0,
        "w": 3.0,
        "h": 4.0,
        "as_read": box["meta"]["as_read"],
    }
    assert text_as_read(shown, "voc") == ["a"]
    assert text_as_read({**shown, "x": 1.6}, "voc") is None
    assert text_as_read(shown, "yolo") is None


def _yolo(tmp_path: Path, labels: str, names: str = "names: [cat, dog]\n") -> Path:
    root = tmp_path / "ds"
    (root / "images/train").mkdir(parents=True)
    (root / "labels/train").mkdir(parents=True)
    Image.new("RGB", (333, 217)).save(root / "images/train/a.png")
    (root / "data.yaml").write_text(names)
    (root / "labels/train/a.txt").write_text(labels)
    return root


def test_yolo_lines_come_back_with_the_decimals_read(lab, tmp_path):
    lines = "1 0.123457 0.5 0.2 0.333333\n0 0.1 0.1 0.3 0.1 0.3 0.3 0.1234567 0.3\n"
    root = _yolo(tmp_path, lines)
    project = lab.project(lab.guess("yolo", root))
    lab.import_(project, root, "yolo")
    out = lab.unzip(lab.export(project, "yolo"), tmp_path / "out")
    assert (out / "labels/train/a.txt").read_text() == lines


def test_yolo_pose_rows_keep_their_keypoints(lab, interop, tmp_path):
    root = tmp_path / "pose"
    shutil.copytree(interop / "yolo/datumaro-yolov8-pose", root)
    project = lab.project(lab.guess("yolo", root))
    lab.import_(project, root, "yolo")
    out = lab.unzip(lab.export(project, "yolo"), tmp_path / "out")
    assert (out / "labels/train/1.txt").read_text() == (root / "labels/train/1.txt").read_text()
    assert yaml.safe_load((out / "data.yaml").read_text())["kpt_shape"] == [3, 3]


def test_yolo_problems_point_at_the_label_file_line(lab, tmp_path):
    root = _yolo(tmp_path, "1 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n")
    project = lab.project(_bbox_schema(["dog"]))
    details = lab.fails(project, root, "yolo")
    assert [d["location"] for d in details] == ["labels/train/a.txt line 2"]
    assert "cat" in details[0]["reason"]


def test_a_truncated_json_says_the_file_ends_early(lab, tmp_path):
    path = tmp_path / "instances.json"
    path.write_text('{"images": [{"id": 1, "file_name": "a.jp')
    project = lab.project(_bbox_schema(["cat"]))
    [detail] = lab.fails(project, path, "coco")
    assert detail["location"] == "instances.json line 1"
    assert detail["reason"] == (
        "not valid JSON: the file ends inside a string (a closing quote is missing): "
        "it is truncated or incomplete"
    )


# -- the schema guesser ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "content"),
    [
        ("coco", "instances.json", b'{"images": [{"id": 1, "file_name": "a.jp'),
        ("coco", "instances.json", b"\x00\xff not json at all"),
        ("cvat", "annotations.xml", b'<annotations><image id="0" name="a" width='),
        ("voc", "a.xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><annotation>&a;</annotation>"),
        ("doccano", "rows.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "lab\n'),
        ("labelstudio", "tasks.json", b'[{"data": {"text": "a"}}, {"data": '),
    ],
)
def test_the_guesser_refuses_a_broken_or_hostile_file_saying_where(
    lab, tmp_path, fmt, name, content
):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as info:
        lab.guess(fmt, path)
    assert info.value.details and all(d.get("location") for d in info.value.details)
    assert name in str(info.value)


def test_the_guesser_refuses_a_result_type_it_cannot_hold(lab, tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(
        '[{"data": {"text": "a"}, "annotations": [{"result": [{"from_name": "mood", '
        '"to_name": "text", "type": "hypertextlabels", "value": {"hypertextlabels": ["x"]}}]}]}]'
    )
    with pytest.raises(InvalidInput, match=r"tasks.json line 1 \(task 1\).*'hypertextlabels'"):
        lab.guess("labelstudio", path)


# -- a project from a file: the CLI and the API ----------------------------------------------


def test_a_project_from_a_file_through_the_api(world, interop):
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    path = interop / "cvat/cvat-docs/xml_format_example_images.xml"
    made = client.request(
        "POST",
        f"/workspaces/{ws['id']}/projects/from-file",
        params={"name": "from cvat", "filename": path.name},
        content=path.read_bytes(),
        headers={"Content-Type": "application/xml"},
    )
    assert made["project"]["name"] == "from cvat"
    assert made["imported"]["n_items"] == 1 and made["imported"]["n_annotations"] == 1
    types = {f["type"] for f in made["project"]["schema"]["fields"]}
    assert {"rectangle", "polygon", "polyline", "keypoints", "tags"} <= types


def test_a_broken_file_creates_no_project(world, tmp_path):
    from labelfarm.client import LabelfarmAPIError

    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    with pytest.raises(LabelfarmAPIError) as info:
        client.request(
            "POST",
            f"/workspaces/{ws['id']}/projects/from-file",
            params={"name": "broken", "filename": "instances.json"},
            content=b'{"images": [{"id": 1, "file_name": "a.jp',
        )
    assert "instances.json line 1" in info.value.message
    assert client.request("GET", f"/workspaces/{ws['id']}/projects")["projects"] == []


def test_a_project_from_a_file_through_the_cli(world, settings, monkeypatch, interop, tmp_path):
    from typer.testing import CliRunner

    from labelfarm.cli import app

    monkeypatch.setenv("LABELFARM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LABELFARM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LABELFARM_SECRET_KEY", "test-secret")
    ws = world.workspace()
    path = interop / "voc/roLabelImg/demo.xml"
    r = CliRunner().invoke(app, ["schema", "guess", str(path)])
    assert r.exit_code == 0 and "type: rectangle" in r.stdout and "(voc)" in r.stdout, r.output
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"images": [{"id": 1, "file_name": "a.jp')
    r = CliRunner().invoke(app, ["schema", "guess", str(broken)])
    assert r.exit_code == 1 and "broken.json line 1" in r.output
    r = CliRunner().invoke(app, ["project", "from-file", ws["slug"], "dogs", str(path)])
    assert r.exit_code == 0 and "imported 1 items, 1 annotations" in r.output, r.output


def test_zip_upload_to_from_file_is_told_by_entries(world, tmp_path):
    ws = world.workspace()
    client = world.user("boss", role="manager", workspace=ws)["client"]
    root = _yolo(tmp_path, "1 0.5 0.5 0.2 0.2\n")
    zpath = tmp_path / "ds.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in root.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(root).as_posix())
    made = client.request(
        "POST",
        f"/workspaces/{ws['id']}/projects/from-file",
        params={"name": "yolo", "filename": "ds.zip"},
        content=zpath.read_bytes(),
    )
    assert made["imported"]["n_annotations"] == 1


SKELETON = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>hand</name><type>skeleton</type><attributes><attribute><name>side</name>
      <input_type>select</input_type><values>left\nright</values></attribute></attributes>
      <svg>&lt;line x1="1" y1="1" x2="2" y2="2"/&gt;</svg></label>
    <label><name>wrist</name><type>points</type><attributes/><parent>hand</parent></label>
    <label><name>thumb</name><type>points</type><attributes/><parent>hand</parent></label>
  </labels></task></meta>
  <image id="0" name="a.jpg" width="100" height="80">
    <skeleton label="hand" source="manual" z_order="0">
      <points label="wrist" source="manual" outside="0" occluded="0" points="10.50,20.25"/>
      <points label="thumb" source="manual" outside="1" occluded="0" points="30.00,40.00"/>
      <attribute name="side">left</attribute>
    </skeleton>
  </image>
</annotations>
"""


def test_a_cvat_skeleton_comes_back_as_a_skeleton(lab, tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(SKELETON)
    project = lab.project(lab.guess("cvat", path))
    lab.import_(project, path, "cvat")
    exported = lab.export(project, "cvat").decode()
    assert '<skeleton label="hand" source="manual" z_order="0">' in exported
    assert 'label="wrist"' in exported and 'points="10.50,20.25"' in exported
    assert 'outside="1"' in exported and '<attribute name="side">left</attribute>' in exported

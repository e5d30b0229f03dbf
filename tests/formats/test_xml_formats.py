"""Pascal VOC and CVAT XML: the fixtures round-trip; entity bombs and bad shapes are refused,
located, and import nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import close  # type: ignore[import-not-found]

VOC_FILES = [
    "voc/datumaro/2007_000001.xml",
    "voc/labelImg/C1_P01_N1_S2_1.xml",
    "voc/roLabelImg/demo.xml",
]
CVAT_FILES = [
    "cvat/datumaro-export_project/annotations.xml",
    "cvat/cvat-docs/xml_format_example_images.xml",
]

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>&lol3;</filename></annotation>
"""


def _tree(el: ET.Element) -> object:
    """An element as plain data: numbers parsed, order of objects kept."""
    if len(el) == 0:
        text = (el.text or "").strip()
        try:
            return float(text)
        except ValueError:
            return text
    out: dict[str, list[object]] = {}
    for child in el:
        out.setdefault(child.tag, []).append(_tree(child))
    return out


def _voc(path: Path) -> dict:
    root = ET.parse(path).getroot()
    data = _tree(root)
    assert isinstance(data, dict)
    return {"attrib": root.attrib, **data}


@pytest.mark.parametrize("name", VOC_FILES)
def test_voc_fixture_round_trips(lab, interop, name, tmp_path):
    path = interop / name
    project = lab.project(lab.guess("voc", path))
    lab.import_(project, path, "voc")
    out = lab.unzip(lab.export(project, "voc"), tmp_path / "out")
    [xml] = list((out / "Annotations").glob("*.xml"))
    close(_voc(xml), _voc(path))


def test_voc_folder_with_images(lab, interop, tmp_path):
    from PIL import Image

    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "Annotations" / "2007_000001.xml").write_bytes((interop / VOC_FILES[0]).read_bytes())
    Image.new("RGB", (20, 10)).save(root / "JPEGImages" / "2007_000001.jpg")
    project = lab.project(lab.guess("voc", root))
    assert lab.import_(project, root, "voc").n_items == 1
    out = lab.unzip(lab.export(project, "voc"), tmp_path / "out")
    assert (out / "JPEGImages" / "2007_000001.jpg").is_file()
    [value] = lab.values(project)["2007_000001.jpg"]
    assert value["boxes"][0]["attributes"] == {
        "pose": "Unspecified",
        "truncated": 1,
        "difficult": 0,
    }


def _cvat(path: Path) -> dict:
    root = ET.parse(path).getroot()
    images = {}
    for img in root.iter("image"):
        shapes = []
        for el in img:
            attrs = {k: v for k, v in el.attrib.items()}
            for default, value in (("occluded", "0"), ("z_order", "0"), ("source", "manual")):
                if attrs.get(default) == value:
                    del attrs[default]
            for key in ("points",):
                if key in attrs:
                    attrs[key] = [[float(c) for c in p.split(",")] for p in attrs[key].split(";")]
            for key in ("xtl", "ytl", "xbr", "ybr"):
                if key in attrs:
                    attrs[key] = float(attrs[key])
            children = {a.get("name"): a.text for a in el.findall("attribute")}
            shapes.append((el.tag, attrs, children))
        key = (img.get("subset"), img.get("name"))
        images[key] = {"attrib": dict(img.attrib), "shapes": shapes}
    return images


@pytest.mark.parametrize("name", CVAT_FILES)
def test_cvat_fixture_round_trips(lab, interop, name, tmp_path):
    path = interop / name
    project = lab.project(lab.guess("cvat", path))
    lab.import_(project, path, "cvat")
    out = tmp_path / "annotations.xml"
    out.write_bytes(lab.export(project, "cvat"))
    before, after = _cvat(path), _cvat(out)
    assert before.keys() == after.keys()
    for key in before:
        assert before[key]["attrib"] == after[key]["attrib"]
        close([list(s) for s in before[key]["shapes"]], [list(s) for s in after[key]["shapes"]])
    # the label attribute specs survive too
    labels = {
        el.findtext("name"): [a.findtext("input_type") for a in el.iter("attribute")]
        for el in ET.parse(out).getroot().iter("label")
    }
    if "datumaro" in name:
        assert labels["label1"] == ["checkbox", "radio", "text", "number"]


def test_cvat_attributes_are_typed(lab, interop):
    path = interop / CVAT_FILES[0]
    project = lab.project(lab.guess("cvat", path))
    lab.import_(project, path, "cvat")
    box = lab.values(project)["Test/img0.jpg"][0]["boxes"][0]
    assert box["attributes"] == {"a1": True, "a2": "v3", "a3": "0003", "a4": 2.4}
    assert box["meta"] == {"occluded": 1, "z_order": 1}


@pytest.mark.parametrize(("fmt", "name"), [("voc", "bomb.xml"), ("cvat", "annotations.xml")])
def test_xml_entity_bomb_is_refused(lab, tmp_path, fmt, name):
    path = tmp_path / name
    path.write_bytes(BOMB.replace(b"annotation>", b"annotations>") if fmt == "cvat" else BOMB)
    schema = {"fields": [{"name": "boxes", "type": "rectangle", "labels": ["a"]}]}
    details = lab.fails(lab.project(schema), path, fmt)
    assert "entities" in details[0]["reason"]


@pytest.mark.parametrize(
    ("fmt", "body", "field"),
    [
        (
            "voc",
            b"<annotation><filename>a.jpg</filename><object><name>a</name><bndbox>"
            b"<xmin>1</xmin><ymin>x</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>"
            b"</annotation>",
            "bndbox.ymin",
        ),
        (
            "voc",
            b"<annotation><filename>a.jpg</filename><object><name>b</name><bndbox>"
            b"<xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>"
            b"</annotation>",
            "boxes[0].label",
        ),
        ("voc", b"<annotation><filename>a.jpg</filename><object>", ""),
        (
            "cvat",
            b'<annotations><image id="0" name="a" width="4" height="4">'
            b'<polygon label="a" points="1,2;3"/></image></annotations>',
            "points",
        ),
        (
            "cvat",
            b'<annotations><image id="0" name="a" width="4" height="4">'
            b'<cuboid label="a"/></image></annotations>',
            "",
        ),
    ],
)
def test_xml_bad_files_are_located(lab, tmp_path, fmt, body, field):
    path = tmp_path / ("annotations.xml" if fmt == "cvat" else "a.xml")
    path.write_bytes(body)
    schema = {
        "fields": [
            {"name": "boxes", "type": "rectangle", "labels": ["a"]},
            {"name": "polygons", "type": "polygon", "labels": ["a"], "required": False},
        ]
    }
    details = lab.fails(lab.project(schema), path, fmt)
    assert details[0]["field"] == field, details
    assert details[0]["location"].startswith(path.name)

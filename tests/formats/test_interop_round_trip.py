"""Every interop fixture, imported and exported again in its own format, loses nothing:
each key path of the source is in the export with the same text, or the import refused
the file with located problems.

The fixtures are found by folder (``coco/``, ``cvat/``, ``voc/``, ``yolo/``,
``labelstudio*/``, ``text_classification/``), so another set of files of the same formats
runs through the same test: point ``LABELFARM_INTEROP_FIXTURES`` at its folder.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from conftest import INTEROP  # type: ignore[import-not-found]
from labelfarm.errors import InvalidInput

ROOT = Path(os.environ.get("LABELFARM_INTEROP_FIXTURES") or INTEROP)

# Visible fixtures that must import (a regression that refuses them fails here); any other
# file may be refused, with located problems.
MUST_IMPORT = {
    "coco/datumaro/instances_val.json",
    "coco/label-studio-sdk/coco_import_input.json",
    "coco/mmdetection/coco_sample.json",
    "cvat/cvat-docs/xml_format_example_images.xml",
    "cvat/datumaro-export_project/annotations.xml",
    "voc/datumaro/2007_000001.xml",
    "voc/labelImg/C1_P01_N1_S2_1.xml",
    "voc/roLabelImg/demo.xml",
    "yolo/datumaro-yolov8",
    "yolo/datumaro-yolov8-pose",
    "yolo/datumaro-yolov8-segmentation",
    "labelstudio/label-studio/tasks_annotations_predictions.json",
    "labelstudio/label-studio-sdk/csv_test.json",
    "labelstudio/label-studio-sdk/data_keypoints.json",
    "labelstudio_audio/label-studio-frontend/transcribe_audio_tasks.json",
    "labelstudio_audio/label-studio-frontend/audio_regions_annotation_1.json",
    "text_classification/doccano/example.jsonl",
    "text_classification/doccano/example.csv",
}

# What an export writes afresh by design (the time of the export, labelfarm's own ids).
MAY_DIFFER = {
    "cvat": [r"/dumped\[\d+\]#text$"],
    "labelstudio": [r"\.annotations\[\d+\]\.(id|created_at|updated_at)$"],
}


def _fixtures() -> list[tuple[str, str]]:
    """(format, path relative to ROOT) of every fixture found."""
    if not ROOT.is_dir():
        return []
    found: list[tuple[str, str]] = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        top = rel.split("/")[0]
        if top == "yolo" and path.is_dir() and rel.count("/") == 1:
            found.append(("yolo", rel))
        elif not path.is_file():
            continue
        elif top == "coco" and path.suffix == ".json":
            found.append(("coco", rel))
        elif top in ("cvat", "voc") and path.suffix == ".xml":
            found.append((top, rel))
        elif top.startswith("labelstudio") and path.suffix == ".json":
            found.append(("labelstudio", rel))
        elif top == "text_classification":
            fmt = {".jsonl": "doccano", ".csv": "doccano-csv", ".tsv": "doccano-tsv"}
            if path.suffix in fmt:
                found.append((fmt[path.suffix], rel))
    return found


# -- key paths ------------------------------------------------------------------------------


def json_paths(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(key path, JSON text) of every leaf; list elements that have an ``id`` are keyed by
    it (an export may order them differently), others by position."""
    if isinstance(value, dict):
        if not value:
            yield path, "{}"
        for k, v in value.items():
            yield from json_paths(v, f"{path}.{k}")
    elif isinstance(value, list):
        if not value:
            yield path, "[]"
        keyed = all(isinstance(v, dict) and "id" in v for v in value)
        for i, v in enumerate(value):
            key = f"id={orjson.dumps(v['id']).decode()}" if keyed else str(i)
            yield from json_paths(v, f"{path}[{key}]")
    else:
        yield path, orjson.dumps(value).decode()


def xml_paths(el: ET.Element, path: str = "") -> Iterator[tuple[str, str]]:
    """(key path, text) of every attribute and text of an element tree; repeated children
    are keyed by their ``id`` and ``name`` attributes, or by position among same-tag
    siblings (shapes of one kind keep their order; kinds may be regrouped)."""
    here = f"{path}/{el.tag}"
    for k, v in el.attrib.items():
        yield f"{here}@{k}", v
    if el.text is not None and el.text.strip():
        yield f"{here}#text", el.text.strip()
    counts: dict[str, int] = {}
    for child in el:
        n = counts[child.tag] = counts.get(child.tag, -1) + 1
        ident = [f"{a}={child.get(a)}" for a in ("subset", "id", "name") if child.get(a)]
        key = f"[{','.join(ident)}]" if ident else f"[{n}]"
        for p, v in xml_paths(child, here):
            yield p.replace(f"{here}/{child.tag}", f"{here}/{child.tag}{key}", 1), v


def _xml(data: bytes) -> dict[str, str]:
    return dict(xml_paths(ET.fromstring(data)))


def _yolo_tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for txt in sorted((root / "labels").rglob("*.txt")):
        rel = txt.relative_to(root).as_posix()
        # the order of a label file's lines means nothing (an export groups them by field)
        lines = sorted(" ".join(ln.split()) for ln in txt.read_text().splitlines() if ln.strip())
        out.update((f"{rel} object {n}", line) for n, line in enumerate(lines))
    for cfg in root.glob("*.yaml"):
        out.update(json_paths(yaml.safe_load(cfg.read_text()), "data.yaml"))
    out.pop("data.yaml.path", None)  # where the dataset lies: "." in an export
    return out


def _source_and_export(fmt: str, src: Path, exported: bytes, tmp: Path) -> tuple[dict, dict]:
    if fmt in ("coco", "labelstudio"):
        given = orjson.loads(src.read_bytes())
        if fmt == "labelstudio" and isinstance(given, dict):
            given = [given]  # a file of one task: exported as a list of one
        return dict(json_paths(given)), dict(json_paths(orjson.loads(exported)))
    if fmt == "cvat":
        return _xml(src.read_bytes()), _xml(exported)
    if fmt == "voc":
        out = _unzip(exported, tmp)
        [xml] = sorted((out / "Annotations").glob("*.xml"))
        return _xml(src.read_bytes()), _xml(xml.read_bytes())
    if fmt == "yolo":
        return _yolo_tree(src), _yolo_tree(_unzip(exported, tmp))
    if fmt == "doccano":
        lines = [orjson.loads(ln) for ln in src.read_bytes().splitlines() if ln.strip()]
        back = [orjson.loads(ln) for ln in exported.splitlines() if ln.strip()]
        return dict(json_paths(lines)), dict(json_paths(back))
    rows = list(csv.DictReader(io.StringIO(src.read_text())))
    back = list(csv.DictReader(io.StringIO(exported.decode())))
    return dict(json_paths(rows)), dict(json_paths(back))


def _unzip(data: bytes, dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(dest)
    return dest


def _yolo_dataset(src: Path, tmp: Path) -> Path:
    """The dataset, completed with data.yaml and images from a sibling dataset when it
    ships only labels (as datumaro's segmentation sample does upstream, byte-identical)."""
    root = tmp / "ds"
    shutil.copytree(src, root)
    donors = [d for d in sorted(src.parent.iterdir()) if (d / "data.yaml").is_file()]
    if not list(root.glob("*.yaml")) and donors:
        shutil.copy(donors[0] / "data.yaml", root / "data.yaml")
    if not (root / "images").is_dir() and donors:
        shutil.copytree(donors[0] / "images", root / "images")
    return root


def _said(notes: list[dict[str, Any]]) -> list[re.Pattern[str]]:
    """The key paths the import report says were left out: a note's reason starts with one
    (``tasks[].annotations[].reviews: …``; ``[]`` is any element, ``tasks`` the top list)."""
    out = []
    for note in notes:
        head, sep, _ = note["reason"].partition(":")
        if not sep or " " in head:
            continue
        pattern = re.escape(head.removeprefix("tasks")).replace(r"\[\]", r"\[[^\]]*\]")
        out.append(re.compile("^" + pattern + r"(?![\w])"))
    return out


# -- the test -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "rel"), _fixtures() or [("none", "none")])
def test_fixture_round_trips_without_loss(lab, tmp_path, fmt, rel):
    if fmt == "none":
        pytest.skip(f"interop fixtures not found at {ROOT}")
    src = ROOT / rel
    path = _yolo_dataset(src, tmp_path) if fmt == "yolo" else src
    try:
        project = lab.project(lab.guess(fmt, path))
        result = lab.import_(project, path, fmt)
    except InvalidInput as exc:  # the schema guess or the import refused the file
        assert rel not in MUST_IMPORT, f"{rel} was refused: {exc.details[:5]}"
        for d in exc.details:  # refused: each problem says where (a line, an element)
            assert re.search(r"line \d+|<\w+>|\.txt|\.xml|\.json", d["location"]), d
            assert d["reason"], d
        return
    source, export = _source_and_export(fmt, path, lab.export(project, fmt), tmp_path / "out")
    differ = [re.compile(p) for p in MAY_DIFFER.get(fmt, [])] + _said(result.notes)
    lost = {
        p: (v, export.get(p))
        for p, v in source.items()
        if export.get(p) != v
        and not any(d.search(p) for d in differ)
        and not (v == "null" and any(k.startswith(f"{p}.") for k in export))  # filled in
    }
    assert not lost, f"{rel}: {len(lost)} of {len(source)} key paths lost or changed: " + str(
        dict(list(lost.items())[:12])
    )

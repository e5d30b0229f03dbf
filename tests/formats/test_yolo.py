"""YOLO: the fixtures round-trip in the Ultralytics layout; bad labels import nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import close  # type: ignore[import-not-found]


def _dataset(interop: Path, tmp: Path, labels: str) -> Path:
    """data.yaml and the image of datumaro-yolov8 with the labels of ``labels`` (the
    segmentation sample's own data.yaml and image are byte-identical; see SOURCES.md)."""
    src = interop / "yolo" / "datumaro-yolov8"
    root = tmp / "ds"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    shutil.copy(src / "data.yaml", root / "data.yaml")
    shutil.copy(src / "images/train/1.jpg", root / "images/train/1.jpg")
    shutil.copy(interop / "yolo" / labels / "labels/train/1.txt", root / "labels/train/1.txt")
    return root


def _lines(text: str) -> list[list[float]]:
    return [[float(v) for v in ln.split()] for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("labels", "fmt"), [("datumaro-yolov8", "yolo"), ("datumaro-yolov8-segmentation", "yolo-seg")]
)
def test_yolo_fixture_round_trips_in_the_ultralytics_layout(lab, interop, tmp_path, labels, fmt):
    root = _dataset(interop, tmp_path, labels)
    project = lab.project(lab.guess("yolo", root))
    assert lab.import_(project, root, "yolo").n_items == 1
    out = lab.unzip(lab.export(project, fmt), tmp_path / "out")
    close(
        _lines((out / "labels/train/1.txt").read_text()),
        _lines((root / "labels/train/1.txt").read_text()),
    )
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    original = yaml.safe_load((root / "data.yaml").read_text())
    assert cfg["names"] == original["names"]  # all ten classes, same indices
    assert cfg["path"] == "." and cfg["train"] == "images/train"
    assert (out / "images/train/1.jpg").read_bytes() == (root / "images/train/1.jpg").read_bytes()


def test_yolo_classes_txt_and_crlf(lab, tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    Image.new("RGB", (100, 50)).save(root / "a.png")
    (root / "classes.txt").write_text("cat\ndog\n")
    (root / "a.txt").write_bytes(b"1 0.5 0.5 0.2 0.4\r\n0 0.1 0.1 0.3 0.1 0.3 0.3\r\n")
    project = lab.project(lab.guess("yolo", root))
    lab.import_(project, root, "yolo")
    [value] = lab.values(project)["a.png"]
    assert value["boxes"] == [{"label": "dog", "x": 40.0, "y": 15.0, "w": 20.0, "h": 20.0}]
    close(value["polygons"][0]["points"], [[10, 5], [30, 5], [30, 15]])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"12 0.5 0.5 0.1 0.1\n", "class 12"),
        (b"0 0.5 zero 0.1 0.1\n", "numbers"),
        (b"0 0.5 0.5 0.1\n", "3 numbers"),
    ],
)
def test_yolo_bad_labels_are_located(lab, interop, tmp_path, content, reason):
    root = _dataset(interop, tmp_path, "datumaro-yolov8")
    (root / "labels/train/1.txt").write_bytes(b"2 0.1 0.1 0.1 0.1\n" + content)
    project = lab.project(lab.guess("yolo", _dataset(interop, tmp_path / "g", "datumaro-yolov8")))
    details = lab.fails(project, root, "yolo")
    assert details[0]["location"] == "labels/train/1.txt line 2"
    assert reason in details[0]["reason"]


def test_yolo_label_file_without_image(lab, interop, tmp_path):
    root = _dataset(interop, tmp_path, "datumaro-yolov8")
    (root / "labels/train/2.txt").write_text("2 0.1 0.1 0.1 0.1\n")
    project = lab.project(lab.guess("yolo", _dataset(interop, tmp_path / "g", "datumaro-yolov8")))
    details = lab.fails(project, root, "yolo")
    assert details[0]["location"] == "labels/train/2.txt"

"""Ultralytics YOLO: a folder (or zip) of images with one ``.txt`` label file per image.

Layout read: ``data.yaml`` (``names`` as a list or an index → name mapping) or
``classes.txt`` (one name per line); images under ``images/<split>/`` with labels under
``labels/<split>/`` (the Ultralytics layout), or label files beside their images (Darknet,
labelImg). A label line is ``class cx cy w h`` (a box, coordinates normalised to 0–1; a
sixth number is a confidence) or ``class x1 y1 x2 y2 …`` (a segmentation polygon). Either
line ending is accepted. The image is read for its size, to turn coordinates into pixels.
A missing label file leaves an image unlabelled; an empty one labels it "no objects".

A pose row (``kpt_shape`` in data.yaml) is a box and its keypoints, tied by a ``group``.
Problems are located at the label file's line. Exports: :mod:`labelfarm.formats.yolo_writer`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from PIL import Image, UnidentifiedImageError

from labelfarm.formats import archive
from labelfarm.formats.folder import IMAGE
from labelfarm.formats.objects import Parsed, Scan, keep_text, read_parsed, register_scanner
from labelfarm.formats.registry import ImportSource, ReadResult, RowProblem, register_reader
from labelfarm.formats.yolo_writer import object_lines

MAX_CLASSES = 100_000  # class indices (a list of names is made as long as the largest)


def _data_yaml(root: Path) -> dict[str, Any]:
    """The dataset's data.yaml (the first YAML file with ``names``), or {}."""
    for cfg in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        try:
            doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            return {}
        if isinstance(doc, dict) and "names" in doc:
            return doc
    return {}


def _kpt_shape(doc: dict[str, Any]) -> tuple[int, int] | None:
    """``kpt_shape`` of data.yaml (points per object, 2 or 3 numbers each), if given."""
    shape = doc.get("kpt_shape")
    if (
        isinstance(shape, list)
        and len(shape) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        and shape[0] > 0
        and shape[1] in (2, 3)
    ):
        return shape[0], shape[1]
    return None


def _names(root: Path) -> tuple[list[str], dict[str, dict[str, Any]], list[RowProblem]]:
    """Class names from data.yaml or classes.txt: (names by index, label_meta, problems)."""
    for cfg in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        rel = cfg.name
        try:
            doc = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            return [], {}, [RowProblem(rel, "", f"not valid YAML: {exc}")]
        if not isinstance(doc, dict) or "names" not in doc:
            continue
        names = doc["names"]
        if isinstance(names, list):
            pairs = list(enumerate(names))
        elif isinstance(names, dict):
            pairs = list(names.items())
        else:
            return [], {}, [RowProblem(rel, "names", "a list of names or an index → name map")]
        if not all(
            isinstance(i, int) and 0 <= i < MAX_CLASSES and isinstance(n, str | int)
            for i, n in pairs
        ):
            reason = f"class indices are whole numbers from 0 to {MAX_CLASSES - 1}"
            return [], {}, [RowProblem(rel, "names", reason)]
        by_index = [""] * (max((i for i, _ in pairs), default=-1) + 1)
        for i, n in pairs:
            by_index[i] = str(n)
        return by_index, {n: {"index": i} for i, n in pairs for n in [str(n)]}, []
    classes = root / "classes.txt"
    if classes.is_file():
        names = [ln.strip() for ln in classes.read_text(encoding="utf-8").splitlines()]
        while names and not names[-1]:
            names.pop()
        return names, {n: {"index": i} for i, n in enumerate(names)}, []
    return [], {}, [RowProblem(root.name, "", "no data.yaml (with 'names') or classes.txt found")]


def _label_file(root: Path, image: Path) -> Path:
    rel = image.relative_to(root)
    parts = list(rel.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
        candidate = root.joinpath(*parts).with_suffix(".txt")
        if candidate.exists():
            return candidate
    return image.with_suffix(".txt")


def _subset(rel: PurePosixPath) -> str | None:
    parts = rel.parts
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        if i + 1 < len(parts) - 1:  # a folder between images/ and the file: the split
            return parts[i + 1]
    return None


@register_scanner("yolo")
def scan_yolo(source: ImportSource) -> Scan:
    try:
        root = archive.unpacked(source)
    except archive.ArchiveError as exc:
        return Scan(iter([Parsed(source.filename, {}, problems=exc.problems)]))
    if not root.is_dir():
        problem = RowProblem(source.filename, "", "YOLO is a folder or a zip of images and labels")
        return Scan(iter([Parsed(source.filename, {}, problems=[problem])]))
    names, meta, problems = _names(root)
    if problems:
        return Scan(iter([Parsed(source.filename, {}, problems=problems)]))
    doc = _data_yaml(root)
    if doc:  # path, splits, kpt_shape and the like: written back by an export in YOLO
        source.file_meta["yolo"] = {
            "data": {k: v for k, v in doc.items() if k != "names"},
            "names": "list" if isinstance(doc.get("names"), list) else "dict",
        }
    return Scan(
        _items(root, names, source, _kpt_shape(doc)),
        labels=[n for n in names if n],
        label_meta=meta,
    )


def _items(
    root: Path, names: list[str], source: ImportSource, kpt: tuple[int, int] | None
) -> Iterator[Parsed]:
    images = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    used_labels: set[Path] = set()
    for image in images:
        rel = PurePosixPath(image.relative_to(root).as_posix())
        where = str(rel)
        p = Parsed(where, {"image": str(rel)}, external_id=str(rel), annotator="yolo")
        if image.is_symlink():
            p.problems.append(RowProblem(where, "", "symbolic links are not followed"))
            yield p
            continue
        try:
            with Image.open(image) as im:
                width, height = im.size
        except (UnidentifiedImageError, OSError) as exc:
            p.problems.append(RowProblem(where, "image", f"not a readable image: {exc}"))
            yield p
            continue
        p.data.update(width=width, height=height)
        subset = _subset(rel)
        if subset:
            p.data["meta"] = {"subset": subset}
        p.media_path = image
        txt = _label_file(root, image)
        if txt.is_file():
            used_labels.add(txt)
            p.objects = _parse_labels(txt, root, names, (width, height), kpt, p.problems)
        source.bytes_read += 1
        yield p
    for txt in sorted(root.rglob("*.txt")):
        if txt.name == "classes.txt" or txt in used_labels:
            continue
        rel_t = txt.relative_to(root).as_posix()
        if "labels" in txt.relative_to(root).parts:
            yield Parsed(
                rel_t,
                {},
                problems=[
                    RowProblem(rel_t, "", "no image for this label file (its size is needed)")
                ],
            )


def _parse_labels(
    txt: Path,
    root: Path,
    names: list[str],
    size: tuple[int, int],
    kpt: tuple[int, int] | None,
    problems: list[RowProblem],
) -> list[dict[str, Any]]:
    rel = txt.relative_to(root).as_posix()
    width, height = size
    objects: list[dict[str, Any]] = []
    try:
        lines = txt.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        problems.append(RowProblem(rel, "", "not UTF-8 text"))
        return objects
    for n, line in enumerate(lines, start=1):
        where = f"{rel} line {n}"
        parts = line.split()
        if not parts:
            continue
        try:
            cls = int(parts[0])
            values = [float(v) for v in parts[1:]]
        except ValueError:
            problems.append(RowProblem(where, "", f"expected a class index and numbers: {line!r}"))
            continue
        if not 0 <= cls < len(names) or not names[cls]:
            problems.append(
                RowProblem(where, "class", f"class {cls} is not among the {len(names)} names")
            )
            continue
        if not all(math.isfinite(v) for v in values):
            problems.append(RowProblem(where, "", "coordinates must be finite numbers"))
            continue
        found = _line_objects(names[cls], values, size, kpt, n)
        if found is None:
            problems.append(RowProblem(where, "", _shape_help(len(values), kpt)))
            continue
        text = " ".join(parts[1:])
        polygon = found[0]["kind"] == "polygon"
        for obj in found:
            obj["at"] = where
            # kept when pixels converted back would not give the same decimals, and always
            # for a polygon: an export in YOLO writes it as a polygon again, not as its box
            if polygon or object_lines(found, width, height, polygon) != [text]:
                keep_text(obj, "yolo", text)
        objects.extend(found)
    return objects


def _shape_help(n: int, kpt: tuple[int, int] | None) -> str:
    pose = f", a pose row 4 + {kpt[0]}×{kpt[1]}" if kpt else ""
    return (
        f"{n} numbers: a box has 4 (5 with a confidence){pose}, "
        "a polygon an even number of at least 6"
    )


def _line_objects(
    label: str, values: list[float], size: tuple[int, int], kpt: tuple[int, int] | None, n: int
) -> list[dict[str, Any]] | None:
    """The objects of one label line (a box; a box and its keypoints; a polygon), in pixels."""
    width, height = size
    if kpt is not None and len(values) == 4 + kpt[0] * kpt[1]:
        box = _box(label, values[:4], size)
        k, d = kpt
        rest = values[4:]
        pts = [[rest[i * d] * width, rest[i * d + 1] * height] for i in range(k)]
        points: dict[str, Any] = {"kind": "points", "label": label, "points": pts}
        if d == 3:
            points["meta"] = {"visibility": [_whole(rest[i * d + 2]) for i in range(k)]}
        box["group"] = points["group"] = n  # the line: one object
        return [box, points]
    if len(values) in (4, 5):
        box = _box(label, values[:4], size)
        if len(values) == 5:
            box["score"] = values[4]
        return [box]
    if len(values) >= 6 and len(values) % 2 == 0:
        pts = [[values[i] * width, values[i + 1] * height] for i in range(0, len(values), 2)]
        return [{"kind": "polygon", "label": label, "points": pts}]
    return None


def _whole(v: float) -> int | float:
    return int(v) if v.is_integer() else v


def _box(label: str, v: list[float], size: tuple[int, int]) -> dict[str, Any]:
    (cx, cy, w, h), (width, height) = v, size
    return {
        "kind": "box",
        "label": label,
        "x": (cx - w / 2) * width,
        "y": (cy - h / 2) * height,
        "w": w * width,
        "h": h * height,
    }


@register_reader("yolo")
def read_yolo(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_yolo(source))

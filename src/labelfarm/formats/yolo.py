"""Ultralytics YOLO: a folder (or zip) of images with one ``.txt`` label file per image.

Layout read: ``data.yaml`` (``names`` as a list or an index → name mapping) or
``classes.txt`` (one name per line); images under ``images/<split>/`` with labels under
``labels/<split>/`` (the Ultralytics layout), or label files beside their images (Darknet,
labelImg). A label line is ``class cx cy w h`` (a box, coordinates normalised to 0–1; a
sixth number is a confidence) or ``class x1 y1 x2 y2 …`` (a segmentation polygon). Either
line ending is accepted. The image is read for its size, to turn coordinates into pixels.
A missing label file leaves an image unlabelled; an empty one labels it "no objects".

Exports (zip): ``yolo`` writes one box line per object (a polygon's bounding box when it
has no box), ``yolo-seg`` one polygon line per object (a box as its four corners); both
with ``data.yaml``, the images and ``manifest.json``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import yaml
from PIL import Image, UnidentifiedImageError

from labelfarm.formats import archive
from labelfarm.formats.folder import IMAGE
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.objects import (
    Parsed,
    Scan,
    label_ids,
    read_parsed,
    register_scanner,
    schema_labels,
    value_objects,
)
from labelfarm.formats.registry import (
    ExportContext,
    ExportRecord,
    ImportSource,
    ReadResult,
    RowProblem,
    register_reader,
    register_writer,
)
from labelfarm.schema import Schema

MAX_CLASSES = 100_000  # class indices (a list of names is made as long as the largest)


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
    return Scan(_items(root, names, source), labels=[n for n in names if n], label_meta=meta)


def _items(root: Path, names: list[str], source: ImportSource) -> Iterator[Parsed]:
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
            p.objects = _parse_labels(txt, root, names, width, height, p.problems)
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
    txt: Path, root: Path, names: list[str], width: int, height: int, problems: list[RowProblem]
) -> list[dict[str, Any]]:
    rel = txt.relative_to(root).as_posix()
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
        label = names[cls]
        if len(values) in (4, 5):
            cx, cy, w, h = values[:4]
            obj: dict[str, Any] = {
                "kind": "box",
                "label": label,
                "x": (cx - w / 2) * width,
                "y": (cy - h / 2) * height,
                "w": w * width,
                "h": h * height,
            }
            if len(values) == 5:
                obj["score"] = values[4]
        elif len(values) >= 6 and len(values) % 2 == 0:
            pts = [[values[i] * width, values[i + 1] * height] for i in range(0, len(values), 2)]
            obj = {"kind": "polygon", "label": label, "points": pts}
        else:
            problems.append(
                RowProblem(
                    where,
                    "",
                    f"{len(values)} numbers: a box has 4, a polygon an even number of at least 6",
                )
            )
            continue
        objects.append(obj)
    return objects


@register_reader("yolo")
def read_yolo(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_yolo(source))


# -- export -------------------------------------------------------------------------------


def _f(v: float) -> str:
    return f"{v:.6f}"


def label_lines(
    objects: list[dict[str, Any]],
    ids: dict[str, int],
    width: float,
    height: float,
    *,
    segments: bool,
) -> list[str]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for n, obj in enumerate(objects):
        if obj["kind"] in ("box", "polygon") and obj["label"] in ids:
            key = ("g", obj["group"], obj["label"]) if obj.get("group") is not None else n
            groups.setdefault(key, []).append(obj)
    lines = []
    for objs in groups.values():
        cls = ids[objs[0]["label"]]
        box = next((o for o in objs if o["kind"] == "box"), None)
        polys = [o for o in objs if o["kind"] == "polygon"]
        if segments:
            rings = [o["points"] for o in polys] or (
                [
                    [
                        [box["x"], box["y"]],
                        [box["x"] + box["w"], box["y"]],
                        [box["x"] + box["w"], box["y"] + box["h"]],
                        [box["x"], box["y"] + box["h"]],
                    ]
                ]
                if box
                else []
            )
            for ring in rings:
                coords = " ".join(f"{_f(x / width)} {_f(y / height)}" for x, y in ring)
                lines.append(f"{cls} {coords}")
            continue
        if box is not None:
            x, y, w, h = box["x"], box["y"], box["w"], box["h"]
        else:
            xs = [p[0] for o in polys for p in o["points"]]
            ys = [p[1] for o in polys for p in o["points"]]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        line = (
            f"{cls} {_f((x + w / 2) / width)} {_f((y + h / 2) / height)} {_f(w / width)} "
            f"{_f(h / height)}"
        )
        score = (box or objs[0]).get("score")
        lines.append(line + (f" {_f(score)}" if score is not None and box is not None else ""))
    return lines


def _paths(rec: ExportRecord) -> tuple[str, str, str]:
    """(subset, image path, label path) inside the archive."""
    meta = rec.data.get("meta") if isinstance(rec.data.get("meta"), dict) else {}
    subset = safe_name(str((meta or {}).get("subset") or "train"))
    name = PurePosixPath(safe_name(str(rec.data.get("image") or f"{rec.item_id}.jpg"))).name
    stem = PurePosixPath(name).stem
    return subset, f"images/{subset}/{name}", f"labels/{subset}/{stem}.txt"


def _write(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext, fmt: str, segments: bool
) -> Iterator[bytes]:
    labels = schema_labels(schema, ("box", "polygon"))
    ids = label_ids(schema, labels, "index", 0)
    z = archive.ZipStream()
    counts = {"images": 0, "labels": 0, "objects": 0, "no_size": 0}
    subsets: dict[str, None] = {}
    with tempfile.TemporaryFile() as media_list:
        for rec in records:
            subset, image_path, label_path = _paths(rec)
            subsets[subset] = None
            counts["images"] += 1
            if rec.media_sha256:
                media_list.write(orjson.dumps([image_path, rec.media_sha256]) + b"\n")
            if rec.label is None:
                continue
            w, h = rec.data.get("width"), rec.data.get("height")
            if not w or not h:
                counts["no_size"] += 1
                continue
            lines = label_lines(
                value_objects(schema, rec.label["value"]), ids, w, h, segments=segments
            )
            counts["labels"] += 1
            counts["objects"] += len(lines)
            yield from z.add(label_path, ["".join(f"{ln}\n" for ln in lines).encode()])
        names = {i: label for label, i in sorted(ids.items(), key=lambda t: t[1])}
        doc = {"path": ".", **{s: f"images/{s}" for s in subsets}, "names": names}
        if "train" not in doc:
            doc["train"] = f"images/{next(iter(subsets), 'train')}"
        yield from z.add("data.yaml", [yaml.safe_dump(doc, sort_keys=False).encode()])
        media_list.seek(0)
        files = (orjson.loads(line) for line in media_list)
        yield from media_entries(z, ((n, sha) for n, sha in files), ctx, counts)
    yield from z.finish(manifest(fmt, ctx, counts))


@register_writer("yolo", "application/zip", extension="zip", context=True)
def write_yolo(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    return _write(records, schema, ctx, "yolo", segments=False)


@register_writer("yolo-seg", "application/zip", extension="zip", context=True)
def write_yolo_seg(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    return _write(records, schema, ctx, "yolo-seg", segments=True)

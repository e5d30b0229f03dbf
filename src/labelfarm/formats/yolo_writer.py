"""Writing Ultralytics YOLO (zip): ``yolo`` writes one line per object (a box; a box and
its keypoints for pose; a polygon read from a YOLO polygon line), ``yolo-seg`` one polygon
line per object (a box as its four corners); both with ``data.yaml`` (the keys an imported
one had, the names, the splits), the images and ``manifest.json``. An object read from a
YOLO line and unchanged since is written as that line was (see :mod:`labelfarm.formats.yolo`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import orjson
import yaml

from labelfarm.formats import archive
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.objects import label_ids, schema_labels, text_as_read, value_objects
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.schema import Schema


def _f(v: float) -> str:
    """A normalised coordinate: 12 significant digits, far below a pixel of any image."""
    return format(v, ".12g")


def _from_yolo(o: dict[str, Any]) -> bool:
    return isinstance(o.get("as_read"), dict) and o["as_read"].get("format") == "yolo"


def label_lines(
    objects: list[dict[str, Any]],
    ids: dict[str, int],
    width: float,
    height: float,
    *,
    segments: bool,
) -> list[str]:
    """One line per object (the shapes sharing a ``group`` are one object): a box, a box
    with its keypoints (pose), or a polygon. ``segments`` writes boxes as polygons. An object
    read from a YOLO line and unchanged since is written as that line was."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for n, obj in enumerate(objects):
        if obj["kind"] in ("box", "polygon", "points") and obj["label"] in ids:
            key = ("g", obj["group"], obj["label"]) if obj.get("group") is not None else n
            groups.setdefault(key, []).append(obj)
    lines = []
    for objs in groups.values():
        cls = ids[objs[0]["label"]]
        texts = [text_as_read(o, "yolo") for o in objs]
        if not segments and all(t is not None for t in texts) and len(set(texts)) == 1:
            lines.append(f"{cls} {texts[0]}")
            continue
        lines.extend(f"{cls} {ln}" for ln in object_lines(objs, width, height, segments))
    return lines


def object_lines(
    objs: list[dict[str, Any]], width: float, height: float, segments: bool
) -> list[str]:
    box = next((o for o in objs if o["kind"] == "box"), None)
    polys = [o for o in objs if o["kind"] == "polygon"]
    points = next((o for o in objs if o["kind"] == "points"), None)

    def ring(pts: list[list[float]]) -> str:
        return " ".join(f"{_f(x / width)} {_f(y / height)}" for x, y in pts)

    if segments or (box is None and polys and all(_from_yolo(o) for o in polys)):
        rings = [o["points"] for o in polys]
        if not rings and box is not None:
            x0, y0, x1, y1 = box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]
            rings = [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]
        return [ring(r) for r in rings]
    if box is not None:
        x, y, w, h = box["x"], box["y"], box["w"], box["h"]
    elif polys:
        xs = [p[0] for o in polys for p in o["points"]]
        ys = [p[1] for o in polys for p in o["points"]]
        x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    else:
        return []
    line = f"{_f((x + w / 2) / width)} {_f((y + h / 2) / height)} {_f(w / width)} {_f(h / height)}"
    if points is not None:
        vis = (points.get("meta") or {}).get("visibility")
        for i, (px, py) in enumerate(points["points"]):
            line += f" {_f(px / width)} {_f(py / height)}"
            if isinstance(vis, list) and i < len(vis):
                line += f" {vis[i]}"
    elif box is not None and box.get("score") is not None:
        line += f" {_f(box['score'])}"
    return [line]


def _paths(rec: ExportRecord) -> tuple[str | None, str, str]:
    """(split, image path, label path) inside the archive. An image imported from a YOLO
    layout (a path with an ``images`` folder: Ultralytics ``images/train/``, Roboflow
    ``train/images/``) keeps its path, its labels beside it under ``labels``; others go
    under ``images/<subset>/`` (``subset`` of the item's meta, else train)."""
    image = safe_name(str(rec.data.get("image") or f"{rec.item_id}.jpg"))
    parts = PurePosixPath(image).parts
    if "images" in parts[:-1]:
        i = len(parts) - 2 - parts[-2::-1].index("images")
        label = PurePosixPath(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
        return None, image, label.as_posix()
    meta = rec.data.get("meta") if isinstance(rec.data.get("meta"), dict) else {}
    subset = safe_name(str((meta or {}).get("subset") or "train"))
    name = PurePosixPath(image).name
    return subset, f"images/{subset}/{name}", f"labels/{subset}/{PurePosixPath(name).stem}.txt"


def _data_yaml(ctx: ExportContext, ids: dict[str, int], subsets: dict[str, None]) -> bytes:
    """data.yaml: the keys an imported one had (its splits among them), the names (a list
    when the import's were one), and a split for each subset written under ``images/``."""
    kept = ctx.file_meta.get("yolo") or {}
    doc: dict[str, Any] = {**(kept.get("data") or {}), "path": "."}
    for s in subsets:
        doc.setdefault(s, f"images/{s}")
    doc.setdefault("train", f"images/{next(iter(subsets), 'train')}")
    names = {i: label for label, i in sorted(ids.items(), key=lambda t: t[1])}
    as_list = kept.get("names") == "list" and list(names) == list(range(len(names)))
    doc["names"] = list(names.values()) if as_list else names
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


def _write(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext, fmt: str, segments: bool
) -> Iterator[bytes]:
    labels = schema_labels(schema, ("box", "polygon", "points"))
    ids = label_ids(schema, labels, "index", 0)
    z = archive.ZipStream()
    counts = {"images": 0, "labels": 0, "objects": 0, "no_size": 0}
    subsets: dict[str, None] = {}
    with tempfile.TemporaryFile() as media_list:
        for rec in records:
            subset, image_path, label_path = _paths(rec)
            if subset is not None:
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
        yield from z.add("data.yaml", [_data_yaml(ctx, ids, subsets)])
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

"""Writing COCO instances JSON, from the objects of each item's current label.

Exports: ``coco`` (the JSON) and ``coco-zip`` (``annotations/instances.json``, the images
under ``images/``, and ``manifest.json``). The shapes of one COCO annotation (those sharing
a ``group``) become one annotation again, with the ``meta`` and attributes an import kept
(see :mod:`labelfarm.formats.coco_reader`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from labelfarm.formats import archive
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.objects import label_ids, label_meta, schema_labels, value_objects
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.schema import Schema
from labelfarm.schema.mask import rle_area, rle_bbox


def _poly_area(pts: list[list[float]]) -> float:
    return abs(sum(pts[i - 1][0] * p[1] - p[0] * pts[i - 1][1] for i, p in enumerate(pts))) / 2


def coco_annotations(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Group an item's objects into COCO annotations (without ids, image or category)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for n, obj in enumerate(objects):
        if obj["kind"] not in ("box", "polygon", "mask"):
            continue
        key = ("g", obj["group"], obj["label"]) if obj.get("group") is not None else ("n", n)
        groups.setdefault(key, []).append(obj)
    for objs in groups.values():
        box = next((o for o in objs if o["kind"] == "box"), None)
        polys = [o for o in objs if o["kind"] == "polygon"]
        mask = next((o for o in objs if o["kind"] == "mask"), None)
        first = next((o for o in objs if o.get("meta") or o.get("attributes")), objs[0])
        meta = dict(first.get("meta") or {})
        attrs = dict(first.get("attributes") or {})
        ann: dict[str, Any] = {"id": meta.pop("id", None), "label": objs[0]["label"]}
        if polys:
            ann["segmentation"] = [[c for p in o["points"] for c in p] for o in polys]
            area: float = sum(_poly_area(o["points"]) for o in polys)
        elif mask is not None:
            ann["segmentation"] = mask["rle"]
            area = rle_area(mask["rle"])
        else:
            area = box["w"] * box["h"] if box else 0.0
        if box is not None:
            ann["bbox"] = [box["x"], box["y"], box["w"], box["h"]]
        elif polys:
            xs = [p[0] for o in polys for p in o["points"]]
            ys = [p[1] for o in polys for p in o["points"]]
            ann["bbox"] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        elif mask is not None:
            ann["bbox"] = rle_bbox(mask["rle"])
        ann["area"] = meta.pop("area", area)
        ann["iscrowd"] = attrs.pop("iscrowd", 1 if mask is not None and not polys else 0)
        if attrs:
            ann["attributes"] = attrs
        score = first.get("score")
        if score is not None:
            ann["score"] = score
        for key, v in meta.items():  # what the import kept, unless the shapes say otherwise
            ann.setdefault(key, v)
        yield ann


def image_id(rec: ExportRecord) -> int | str:
    ext = rec.external_id
    if ext is not None and ext.lstrip("-").isdigit():
        return int(ext)
    return rec.item_id


def image_name(rec: ExportRecord) -> str:
    v = rec.data.get("image")
    return v if isinstance(v, str) and v else f"{rec.item_id}.jpg"


def write_coco_json(
    records: Iterable[ExportRecord],
    schema: Schema,
    ctx: ExportContext,
    counts: dict[str, int],
    seen: list[ExportRecord] | None = None,
) -> Iterator[bytes]:
    labels = schema_labels(schema, ("box", "polygon", "mask"))
    ids = label_ids(schema, labels, "id", 1)
    meta = label_meta(schema)
    with tempfile.TemporaryFile() as spool:
        yield b'{"images": ['
        next_id = 0
        n_img = n_ann = 0
        out: list[bytes] = []
        for rec in records:
            img: dict[str, Any] = {"id": image_id(rec), "file_name": image_name(rec)}
            for i, key in enumerate(("width", "height")):
                if key in rec.data:
                    img[key] = rec.data[key]
                elif rec.image_size is not None:  # the size stored when the image came in
                    img[key] = rec.image_size[i]
            if isinstance(rec.data.get("meta"), dict):
                img.update({k: v for k, v in rec.data["meta"].items() if k not in img})
            out.append((b"," if n_img else b"") + orjson.dumps(img))
            n_img += 1
            if seen is not None:
                seen.append(rec)
            value = (rec.label or {}).get("value")
            for ann in coco_annotations(value_objects(schema, value)):
                label = ann.pop("label")
                if label not in ids:
                    continue
                if ann["id"] is None:
                    next_id += 1
                    ann["id"] = next_id
                elif isinstance(ann["id"], int):
                    next_id = max(next_id, ann["id"])
                doc = {"id": ann.pop("id"), "image_id": img["id"], "category_id": ids[label], **ann}
                spool.write((b"," if n_ann else b"") + orjson.dumps(doc))
                n_ann += 1
            if len(out) >= 1000:
                yield b"".join(out)
                out.clear()
            if seen is not None and len(seen) >= 1000:
                yield b""  # let the caller drain ``seen``
        yield b"".join(out)
        yield b'], "annotations": ['
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk
        cats = [
            {
                "id": ids[label],
                "name": label,
                "supercategory": meta.get(label, {}).get("supercategory", ""),
                **{
                    k: v for k, v in meta.get(label, {}).items() if k not in ("id", "supercategory")
                },
            }
            for label in labels
        ]
        counts.update(images=n_img, annotations=n_ann, categories=len(cats))
        yield b'], "categories": ' + orjson.dumps(cats) + _file_keys(ctx, counts) + b"}"


def _file_keys(ctx: ExportContext, counts: dict[str, int]) -> bytes:
    """``info`` and ``licenses``, and any other top-level key an imported COCO file had
    (its ``info`` gains a ``labelfarm`` manifest), as the tail of the top-level object."""
    kept = dict(ctx.file_meta.get("coco") or {})
    info = kept.pop("info", None)
    if not isinstance(info, dict):
        info = {"description": f"labelfarm export of project {ctx.project_name!r}"}
    doc = {
        "info": {**info, "labelfarm": manifest("coco", ctx, counts)},
        "licenses": kept.pop("licenses", []),
        **kept,
    }
    return b"".join(b", " + orjson.dumps(k) + b": " + orjson.dumps(v) for k, v in doc.items())


@register_writer("coco", "application/json", extension="json", context=True)
def write_coco(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    yield from (c for c in write_coco_json(records, schema, ctx, {}) if c)


@register_writer("coco-zip", "application/zip", extension="zip", context=True)
def write_coco_zip(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    """The JSON, then every image, then the manifest. Images are fetched again from the
    records seen, a thousand at a time, so the archive streams."""
    z = archive.ZipStream()
    counts: dict[str, int] = {}
    seen: list[ExportRecord] = []
    with tempfile.TemporaryFile() as names:

        def remember() -> None:
            for rec in seen:
                if rec.media_sha256:
                    names.write(
                        orjson.dumps([safe_name(image_name(rec)), rec.media_sha256]) + b"\n"
                    )
            seen.clear()

        def json_chunks() -> Iterator[bytes]:
            for chunk in write_coco_json(records, schema, ctx, counts, seen):
                remember()
                if chunk:
                    yield chunk
            remember()

        yield from z.add("annotations/instances.json", json_chunks())
        names.seek(0)
        files = (orjson.loads(line) for line in names)
        yield from media_entries(z, ((f"images/{n}", sha) for n, sha in files), ctx, counts)
    yield from z.finish(manifest("coco-zip", ctx, counts))

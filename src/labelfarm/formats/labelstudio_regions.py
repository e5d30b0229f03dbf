"""One annotation value of a project's schema → Label Studio results (the way back of
:mod:`labelfarm.formats.labelstudio_results`).

Image regions are written in Label Studio's percentages of the image with its
``original_width``/``original_height``: the size the region came with from Label Studio,
else the item's stored image size (every image imported into labelfarm has one), else its
data's ``width``/``height``. A region in pixels on an image of unknown size cannot be placed
and is an error naming the item, never a guess. Region ids and ``to_name`` are the ones the
region came with; others are made up (``lf1``, ``lf2``…) and named by the schema.
"""

from __future__ import annotations

from typing import Any

from labelfarm.errors import InvalidInput
from labelfarm.formats.labelstudio_audio import region_controls, region_results
from labelfarm.formats.labelstudio_dialogue import DialogueError, range_of, span_of, texts_for
from labelfarm.formats.labelstudio_results import (
    OWN_META,
    ResultError,
    geometry,
    order_key,
    rotate,
    scalar_value,
)
from labelfarm.formats.labelstudio_schema import SHAPE_TYPES, control_tag, object_name, to_names
from labelfarm.schema import FieldError, FieldType, Schema


class RegionWriter:
    """One annotation value of a schema → Label Studio results."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.to_name = to_names(schema)
        self.region_names = region_controls(schema)
        self.dialogue_fields = {
            f.name for f in schema.fields if control_tag(schema, f) == "ParagraphLabels"
        }
        self._data: dict[str, Any] = {}

    def results(
        self,
        value: dict[str, Any],
        data: dict[str, Any],
        image_size: tuple[float, float] | None = None,
        where: str = "",
        source_meta: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The results of one annotation (or prediction) value; ``source_meta`` is what its
        import kept of the results it came from (their order, keys of one-value fields)."""
        kept = source_meta or {}
        self._data = data
        out: list[dict[str, Any]] = []
        relations: list[dict[str, Any]] = []
        n = 0
        for f in self.schema.fields:
            v = value.get(f.name)
            if v is None:
                continue
            base = {"from_name": f.name, "to_name": object_name(self.to_name, f, data)}
            t = f.type_name
            if t == "segments":  # audio regions (labelfarm.formats.labelstudio_audio)
                given = (kept.get("results") or {}).get(f.name)
                names = self.region_names.get(f.name) or {}
                out += region_results(f, v, names, base["to_name"], given)
                continue
            if t in SHAPE_TYPES:
                for shape in v:
                    n += 1
                    r = self._region(t, shape, base, _size(image_size, data), n, where)
                    for rel in (shape.get("meta") or {}).get("relations", []):
                        relations.append({"from_id": r["id"], **rel, "type": "relation"})
                    out.append(r)
            else:
                extra = dict((kept.get("results") or {}).get(f.name) or {})
                ls_value = extra.pop("ls_value", None)
                result = {**base, **extra, **self._scalar(f, v)}
                if _still(f, v, ls_value):
                    result["value"] = ls_value  # as imported, to the last digit
                out.append(result)
        return _in_order(out + relations, kept.get("order") or [])

    def _scalar(self, f: FieldType, v: Any) -> dict[str, Any]:
        t = f.type_name
        if t in ("choice", "multichoice"):
            return {"type": "choices", "value": {"choices": [v] if t == "choice" else list(v)}}
        if t == "text":
            lines = [v] if getattr(f, "multiline", False) else str(v).split("\n")
            return {"type": "textarea", "value": {"text": lines}}
        if t == "number":
            kind = "rating" if control_tag(self.schema, f) == "Rating" else "number"
            return {"type": kind, "value": {kind: v}}
        raise InvalidInput(
            f"field {f.name!r}: a {t} field has no Label Studio result type",
            [{"field": f.name, "reason": f"no Label Studio result for {t}"}],
        )

    def _region(
        self,
        t: str,
        shape: dict[str, Any],
        base: dict[str, Any],
        size: tuple[float, float] | None,
        n: int,
        where: str,
    ) -> dict[str, Any]:
        meta = dict(shape.get("meta") or {})
        own = {k: meta.pop(k, None) for k in OWN_META}
        r: dict[str, Any] = {"id": meta.pop("id", f"lf{n}"), **base, **meta}
        label = shape["label"]
        if t == "spans" and (own["paragraphs"] or base["from_name"] in self.dialogue_fields):
            return self._paragraphs(r, shape, own["ls_value"], where)
        if t == "spans":
            v: dict[str, Any] = {"start": shape["start"], "end": shape["end"]}
            if "text" in shape:
                v["text"] = shape["text"]
            r.update(type="labels", value={**v, "labels": [label]})
            return _as_imported(r, t, shape, own["ls_value"], None)
        if own["percent"]:
            sx = sy = 1.0
        else:
            w_img = r.get("original_width") or (size[0] if size else None)
            h_img = r.get("original_height") or (size[1] if size else None)
            if not w_img or not h_img:
                raise InvalidInput(
                    f"{where}: the image size is unknown, so its {base['from_name']!r} regions "
                    "cannot be given in Label Studio's percentages; import the images into "
                    "labelfarm (a folder or an archive) or give width and height in the data",
                    [{"location": where, "field": base["from_name"], "reason": "no image size"}],
                )
            r.update(original_width=w_img, original_height=h_img)
            sx, sy = 100 / w_img, 100 / h_img
        if t in ("rectangle", "bbox"):
            rot = shape.get("rotation", 0)
            x, y = rotate(shape["x"], shape["y"], shape["w"], shape["h"], rot, -1)
            r.update(
                type="rectanglelabels",
                value={
                    "x": x * sx,
                    "y": y * sy,
                    "width": shape["w"] * sx,
                    "height": shape["h"] * sy,
                    "rotation": rot,
                    "rectanglelabels": [label],
                },
            )
        elif t == "polygon":
            v = {"points": [[p[0] * sx, p[1] * sy] for p in shape["points"]]}
            if own["closed"] is not None:
                v["closed"] = own["closed"]
            r.update(type="polygonlabels", value={**v, "polygonlabels": [label]})
        else:
            x, y = shape["points"][0]
            v = {"x": x * sx, "y": y * sy}
            if own["point_width"] is not None:
                v["width"] = own["point_width"]
            r.update(type="keypointlabels", value={**v, "keypointlabels": [label]})
        size_given = None if own["percent"] else (r["original_width"], r["original_height"])
        return _as_imported(r, t, shape, own["ls_value"], size_given)

    def _paragraphs(
        self, r: dict[str, Any], shape: dict[str, Any], ls_value: Any, where: str
    ) -> dict[str, Any]:
        """A span of a dialogue as a ``paragraphlabels`` result: the value it was imported
        with while the span is unchanged, else its utterance indexes and offsets."""
        label = shape["label"]
        try:
            texts = texts_for(self.schema, str(r["to_name"]), self._data)
            value = {**range_of(shape, texts), "paragraphlabels": [label]}
        except DialogueError as exc:
            raise InvalidInput(
                f"{where}: {exc.reason}",
                [{"location": where, "field": r["from_name"], "reason": exc.reason}],
            ) from None
        if isinstance(ls_value, dict) and ls_value.get("paragraphlabels") == [label]:
            try:
                then = span_of(ls_value, texts)
            except DialogueError:
                then = {}
            if (then.get("start"), then.get("end")) == (shape["start"], shape["end"]):
                value = ls_value
        r.update(type="paragraphlabels", value=value)
        return _score(r, shape)


def _size(
    image_size: tuple[float, float] | None, data: dict[str, Any]
) -> tuple[float, float] | None:
    if image_size and image_size[0] and image_size[1]:
        return image_size
    w, h = data.get("width"), data.get("height")
    ok = all(isinstance(s, int | float) and not isinstance(s, bool) and s > 0 for s in (w, h))
    return (w, h) if ok else None  # type: ignore[return-value]


def _as_imported(
    r: dict[str, Any],
    t: str,
    shape: dict[str, Any],
    ls_value: Any,
    size: tuple[float, float] | None,
) -> dict[str, Any]:
    """The region with the value it was imported with, as it was, while the shape still
    has the geometry and label that value gives (so its numbers keep their digits)."""
    if isinstance(ls_value, dict) and _same(t, shape, ls_value, size, r["value"]):
        r["value"] = ls_value
    return _score(r, shape)


def _same(
    t: str,
    shape: dict[str, Any],
    ls_value: dict[str, Any],
    size: tuple[float, float] | None,
    written: dict[str, Any],
) -> bool:
    try:
        then = geometry(t, ls_value, size)
    except ResultError:
        return False
    label_key = next(k for k in written if k.endswith("labels"))
    return ls_value.get(label_key, ls_value.get("labels")) == written[label_key] and all(
        shape.get(k) == then.get(k) for k in {*then, "rotation"} if k != "text"
    )


def _still(f: FieldType, v: Any, ls_value: Any) -> bool:
    """Whether the value a result was imported with still gives value ``v``."""
    if not isinstance(ls_value, dict):
        return False
    try:
        return bool(f.validate(scalar_value(f, ls_value)) == v)
    except (ResultError, FieldError):
        return False


def _in_order(results: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """Results in the order their import read them; new ones after, as written."""
    if not order:
        return results
    places: dict[str, list[int]] = {}
    for i, key in enumerate(order):
        places.setdefault(key, []).append(i)
    seen: dict[str, int] = {}

    def place(r: dict[str, Any]) -> int:
        """The n-th result of a key (a region's labels and its text share an id) takes
        the place of the n-th result of that key as read."""
        key = order_key(r)
        n = seen[key] = seen.get(key, -1) + 1
        found = places.get(key) or [len(order)]
        return found[min(n, len(found) - 1)]

    return sorted(results, key=place)


def _score(r: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    if shape.get("score") is not None:
        r["score"] = shape["score"]
    return r

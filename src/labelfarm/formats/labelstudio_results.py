"""Label Studio results ↔ one annotation value of a project's schema (see
:mod:`labelfarm.formats.labelstudio` for the mapping, field type by field type)."""

from __future__ import annotations

import math
from typing import Any

from labelfarm.formats.registry import RowProblem
from labelfarm.schema import FieldError, FieldType, Schema

LABEL_KEY = {
    "rectanglelabels": "rectanglelabels",
    "polygonlabels": "polygonlabels",
    "keypointlabels": "keypointlabels",
    "labels": "labels",
}
_RESULT_META = (
    "id",
    "origin",
    "parentID",
    "to_name",
    "image_rotation",
    "original_width",
    "original_height",
    "readonly",
    "hidden",
)


def _rotate(x: float, y: float, w: float, h: float, deg: float, sign: int) -> tuple[float, float]:
    """Move the top-left corner between Label Studio's pivot (the corner) and the centre."""
    if not deg:
        return x, y
    t = math.radians(deg)
    dx = (w / 2) * math.cos(t) - (h / 2) * math.sin(t) - w / 2
    dy = (w / 2) * math.sin(t) + (h / 2) * math.cos(t) - h / 2
    return x + sign * dx, y + sign * dy


class ResultConverter:
    """Label Studio results ↔ one annotation value of a schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def value(self, results: Any, where: str) -> dict[str, Any] | list[RowProblem]:
        problems: list[RowProblem] = []
        if not isinstance(results, list):
            return [RowProblem(where, "result", "must be a list")]
        value: dict[str, Any] = {}
        regions: dict[str, dict[str, Any]] = {}
        relations: list[dict[str, Any]] = []
        for i, r in enumerate(results):
            at = f"result[{i}]"
            if not isinstance(r, dict):
                problems.append(RowProblem(where, at, "a result is an object"))
                continue
            if r.get("type") == "relation":
                relations.append(r)
                continue
            f = self.schema.by_name.get(str(r.get("from_name")))
            if f is None:
                problems.append(
                    RowProblem(
                        where,
                        f"{at}.from_name",
                        f"no field named "
                        f"{r.get('from_name')!r} in the schema; fields are "
                        f"{list(self.schema.by_name)}",
                    )
                )
                continue
            try:
                self._put(f, r, value, regions)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                problems.append(
                    RowProblem(
                        where,
                        at,
                        f"cannot read a {r.get('type')!r} result "
                        f"for a {f.type_name} field: {exc!r}",
                    )
                )
        for rel in relations:
            src = regions.get(str(rel.get("from_id")))
            if src is None or str(rel.get("to_id")) not in regions:
                problems.append(
                    RowProblem(
                        where,
                        "relation",
                        f"relation {rel.get('from_id')!r}"
                        f" → {rel.get('to_id')!r} names a missing region",
                    )
                )
                continue
            extra = {k: v for k, v in rel.items() if k not in ("type", "from_id")}
            src.setdefault("meta", {}).setdefault("relations", []).append(extra)
        if problems:
            return problems
        try:
            return self.schema.validate(value)
        except FieldError as exc:
            return [RowProblem(where, f"value.{exc.path}", exc.reason)]

    def _put(
        self,
        f: FieldType,
        r: dict[str, Any],
        value: dict[str, Any],
        regions: dict[str, dict[str, Any]],
    ) -> None:
        v = r["value"]
        t = f.type_name
        if t == "choice":
            if len(v["choices"]) != 1:
                raise ValueError(f"{len(v['choices'])} choices for a single-choice field")
            value[f.name] = v["choices"][0]
        elif t == "multichoice":
            value[f.name] = list(v["choices"])
        elif t == "text":
            texts = v["text"]
            value[f.name] = "\n".join(texts) if isinstance(texts, list) else texts
        elif t == "number":
            value[f.name] = v.get("rating", v.get("number"))
        elif t in ("spans", "rectangle", "bbox", "polygon", "keypoints"):
            shape = self._shape(t, r)
            value.setdefault(f.name, []).append(shape)
            if r.get("id") is not None:
                regions[str(r["id"])] = shape
        else:
            raise ValueError(f"a {t} field cannot take Label Studio results")

    def _shape(self, t: str, r: dict[str, Any]) -> dict[str, Any]:
        v = r["value"]
        label_key = LABEL_KEY.get(str(r.get("type")), "")
        labels = v.get(label_key) or v.get("labels") or []
        if len(labels) != 1:
            raise ValueError(f"{len(labels)} labels on one region; exactly one is supported")
        shape: dict[str, Any] = {"label": labels[0]}
        meta = {k: r[k] for k in _RESULT_META if k in r}
        if t == "spans":
            shape.update(start=v["start"], end=v["end"])
            if "text" in v:
                shape["text"] = v["text"]
        else:
            w_img, h_img = r.get("original_width"), r.get("original_height")
            if not w_img or not h_img:
                meta["percent"] = True  # no image size given: coordinates stay percentages
                w_img = h_img = 100
            sx, sy = w_img / 100, h_img / 100
            if t in ("rectangle", "bbox"):
                w, h = v["width"] * sx, v["height"] * sy
                rot = v.get("rotation") or 0
                x, y = _rotate(v["x"] * sx, v["y"] * sy, w, h, rot, +1)
                shape.update(x=x, y=y, w=w, h=h)
                if rot and t == "rectangle":
                    shape["rotation"] = rot
            elif t == "polygon":
                shape["points"] = [[p[0] * sx, p[1] * sy] for p in v["points"]]
                extra = {k: v[k] for k in ("closed",) if k in v}
                meta.update(extra)
            else:
                shape["points"] = [[v["x"] * sx, v["y"] * sy]]
                if "width" in v:
                    meta["point_width"] = v["width"]
        if "score" in r:
            shape["score"] = r["score"]
        if meta and t != "bbox":
            shape["meta"] = meta
        return shape

    # -- export ----------------------------------------------------------------------------
    def results(self, value: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        relations: list[dict[str, Any]] = []
        n = 0
        for f in self.schema.fields:
            v = value.get(f.name)
            if v is None:
                continue
            base = {"from_name": f.name, "to_name": self._to_name(f, data)}
            t = f.type_name
            if t in ("choice", "multichoice"):
                out.append(
                    {
                        **base,
                        "type": "choices",
                        "value": {"choices": [v] if t == "choice" else list(v)},
                    }
                )
            elif t == "text":
                out.append({**base, "type": "textarea", "value": {"text": [v]}})
            elif t == "number":
                out.append({**base, "type": "number", "value": {"number": v}})
            elif t in ("spans", "rectangle", "bbox", "polygon", "keypoints"):
                for shape in v:
                    n += 1
                    r = self._region(t, shape, base, data, n)
                    for rel in (shape.get("meta") or {}).get("relations", []):
                        relations.append({"from_id": r["id"], **rel, "type": "relation"})
                    out.append(r)
        return out + relations

    def _to_name(self, f: FieldType, data: dict[str, Any]) -> str:
        want = "text" if f.type_name in ("spans", "choice", "multichoice", "text") else "image"
        for key, kind in self.schema.data.items():
            if kind == want:
                return key
        return want if want in data or not data else next(iter(data))

    def _region(
        self, t: str, shape: dict[str, Any], base: dict[str, Any], data: dict[str, Any], n: int
    ) -> dict[str, Any]:
        meta = dict(shape.get("meta") or {})
        meta.pop("relations", None)
        percent = meta.pop("percent", False)
        point_width = meta.pop("point_width", None)
        closed = meta.pop("closed", None)
        r: dict[str, Any] = {"id": meta.pop("id", f"lf{n}"), **base}
        r.update(meta)
        label = shape["label"]
        if t == "spans":
            v: dict[str, Any] = {"start": shape["start"], "end": shape["end"]}
            if "text" in shape:
                v["text"] = shape["text"]
            r.update(type="labels", value={**v, "labels": [label]})
            return self._score(r, shape)
        w_img = 100 if percent else r.get("original_width") or data.get("width")
        h_img = 100 if percent else r.get("original_height") or data.get("height")
        if not w_img or not h_img:
            w_img = h_img = 100
        elif not percent:
            r.setdefault("original_width", w_img)
            r.setdefault("original_height", h_img)
        sx, sy = 100 / w_img, 100 / h_img
        if t in ("rectangle", "bbox"):
            rot = shape.get("rotation", 0)
            x, y = _rotate(shape["x"], shape["y"], shape["w"], shape["h"], rot, -1)
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
            if closed is not None:
                v["closed"] = closed
            r.update(type="polygonlabels", value={**v, "polygonlabels": [label]})
        else:
            x, y = shape["points"][0]
            v = {"x": x * sx, "y": y * sy}
            if point_width is not None:
                v["width"] = point_width
            r.update(type="keypointlabels", value={**v, "keypointlabels": [label]})
        return self._score(r, shape)

    @staticmethod
    def _score(r: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
        if shape.get("score") is not None:
            r["score"] = shape["score"]
        return r

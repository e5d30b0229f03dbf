"""Label Studio audio regions ↔ a ``segments`` field.

In a label config, the ``<Labels>`` on an ``<Audio>`` (or ``<AudioPlus>``) and its
``<TextArea perRegion="true">`` together make one ``segments`` field, named as the
``<Labels>`` (as the text area when there is no ``<Labels>``). A ``<TextArea>`` on the audio
that is not per region stays a ``text`` field (the transcript of the whole file). Each
region (a ``labels`` result and the ``textarea`` result with the same ``id``) becomes one
segment:

===========================  ===============================================================
Label Studio region          segment
===========================  ===============================================================
``value.start``, ``end``     ``start``, ``end`` (seconds, to the millisecond)
``value.channel``            ``channel`` (0 when not given)
``value.labels``             a label the field lists among its ``events`` is an event; any
                             other label is the ``speaker`` (one per region)
text area ``value.text``     ``text`` (entries joined by line breaks)
===========================  ===============================================================

Which labels are events is the field's spec: reading a label config, every label of a
``<Labels>`` on an audio without a per-region ``<TextArea>`` is an event (what is heard: the
regions have no text), and with one, a label named as one of the usual events (noise, music,
overlap, unintelligible; case and brackets aside) is an event and the others are speakers.
The schema guessed from a file of tasks decides the same way from the regions: labels of
regions with text are speakers, labels of regions without are events.

The schema keeps the names of the two controls in its ``labelstudio.objects`` entry of the
audio (``regions: {field, labels, text}``). The region ids, the rest of each result
(``origin``, ``source``, ``to_name``, …) and its value as written (the times to the last
digit, the labels in their order) stay in the annotation's ``source_meta``; an export
writes them back for every segment whose times, labels and text are those it was read with.
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath
from typing import Any

from labelfarm.formats.folder import AUDIO
from labelfarm.formats.labelstudio_schema import objects
from labelfarm.schema import FieldType, Schema
from labelfarm.schema.segments import DEFAULT_EVENTS

AUDIO_TAGS = frozenset({"Audio", "AudioPlus"})
# keys of a result the segment itself holds; the others are kept
_READ = ("from_name", "type", "value")


class RegionError(ValueError):
    """A region result that cannot become part of a segment: why, and where in the result."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def is_event_name(label: str) -> bool:
    """Whether a label names one of the usual events (``Noise``, ``[music]``, …)."""
    return label.strip().strip("[]<>").strip().lower() in DEFAULT_EVENTS


# -- the schema's controls --------------------------------------------------------------


def region_controls(schema: Schema) -> dict[str, dict[str, str | None]]:
    """Segments field -> the names of the controls making its regions: ``labels`` (the
    ``<Labels>``) and ``text`` (the per-region ``<TextArea>``); either may be None. A field
    the section does not name has a ``<Labels>`` named as itself and a ``<TextArea>`` named
    ``<field>_text``."""
    out: dict[str, dict[str, str | None]] = {}
    for o in objects(schema):
        reg = o.get("regions")
        if isinstance(reg, dict) and reg.get("field") in schema.by_name:
            labels, text = reg.get("labels"), reg.get("text")
            out[str(reg["field"])] = {
                "labels": str(labels) if labels else None,
                "text": str(text) if text else None,
            }
    for f in schema.fields:
        if f.type_name == "segments" and f.name not in out:
            out[f.name] = {"labels": f.name, "text": f"{f.name}_text"}
    return out


def control_names(schema: Schema) -> dict[str, str]:
    """Control name -> the segments field its results fill (for names other than the
    field's own)."""
    out = {}
    for field, names in region_controls(schema).items():
        for name in names.values():
            if name and name != field and name not in schema.by_name:
                out[name] = field
    return out


def region_field(
    labels: list[tuple[str, list[str], bool]],
    text: tuple[str, bool] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``segments`` field of an audio object from its controls, and its ``regions``
    entry: ``labels`` is the ``<Labels>`` (name, label values, required) if there is one,
    ``text`` the per-region ``<TextArea>`` (name, required)."""
    name = labels[0][0] if labels else (text[0] if text else "")
    values = labels[0][1] if labels else []
    if text is None:
        events, speakers = list(values), []
    else:
        events = [v for v in values if is_event_name(v)]
        speakers = [v for v in values if not is_event_name(v)]
    spec: dict[str, Any] = {
        "name": name,
        "type": "segments",
        "required": bool((labels and labels[0][2]) or (text and text[1])),
        "speakers": speakers,
    }
    if values:
        spec["events"] = events
    regions = {"field": name, "labels": labels[0][0] if labels else None}
    regions["text"] = text[0] if text else None
    return spec, regions


def control_lines(schema: Schema, f: FieldType, target: str) -> list[str]:
    """The label config's controls for segments field ``f`` on audio object ``target``: its
    ``<Labels>`` (speakers, then events) and its per-region ``<TextArea>``."""
    from xml.sax.saxutils import quoteattr

    names = region_controls(schema).get(f.name) or {}
    req = ' required="true"' if f.required else ""
    out = []
    values = [*getattr(f, "speakers", []), *getattr(f, "events", [])]
    if names.get("labels") and values:  # required on the labels: event regions have no text
        head = f"name={quoteattr(str(names['labels']))} toName={quoteattr(target)}{req}"
        out.append(f"  <Labels {head}>")
        out += [f"    <Label value={quoteattr(v)}/>" for v in values]
        out.append("  </Labels>")
        req = ""
    if names.get("text"):
        out.append(
            f"  <TextArea name={quoteattr(str(names['text']))} toName={quoteattr(target)}"
            f' perRegion="true" editable="true" rows="2"{req}/>'
        )
    return out


# -- results -> segments ----------------------------------------------------------------


def _seconds(v: dict[str, Any], key: str) -> float:
    found = v.get(key)
    if isinstance(found, bool) or not isinstance(found, int | float):
        raise RegionError(f"an audio region's {key!r} is a time in seconds", f"value.{key}")
    return float(found)


def _geometry(v: dict[str, Any]) -> tuple[int, float, float]:
    """(channel, start, end) of a region, the times rounded as a segment keeps them."""
    channel = v.get("channel", 0)
    if channel is None:
        channel = 0
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise RegionError("'channel' is a whole number", "value.channel")
    return channel, round(_seconds(v, "start"), 3), round(_seconds(v, "end"), 3)


def _texts(v: dict[str, Any]) -> str:
    texts = v.get("text")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(s, str) for s in texts):
        raise RegionError("'text' is a list of strings", "value.text")
    return unicodedata.normalize("NFC", "\n".join(texts))


def _roles(f: FieldType, labels: Any) -> tuple[str | None, list[str]]:
    """(speaker, events) of a region's labels in field ``f``."""
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise RegionError("'labels' is a list of label names", "value.labels")
    events: list[str] = []
    speakers: list[str] = []
    known = list(getattr(f, "events", []))
    for label in labels:
        event = next((e for e in known if e == label), None) or next(
            (e for e in known if is_event_name(e) and is_event_name(label) and _same(e, label)),
            None,
        )
        (events if event else speakers).append(event or label)
    if len(speakers) > 1:
        raise RegionError(
            f"labels {speakers} name two speakers on one region; field {f.name!r} holds one "
            f"(its events are {known})",
            "value.labels",
        )
    return (speakers[0] if speakers else None), events


def _same(a: str, b: str) -> bool:
    return a.strip().strip("[]<>").strip().lower() == b.strip().strip("[]<>").strip().lower()


def put_region(
    f: FieldType,
    r: dict[str, Any],
    value: dict[str, Any],
    kept: dict[str, Any],
    segments: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
) -> None:
    """Add one ``labels`` or ``textarea`` result of an audio region to the ``segments``
    being read (the region's segment, by its id in ``by_id``) and to ``kept`` (what the
    export writes back: per region, each result's other keys and value as written)."""
    channel, start, end = _geometry(value)
    rid = r.get("id")
    regions = kept.setdefault("regions", {})
    key = f"id:{rid}" if rid is not None else f"n:{len(regions)}"
    seg = by_id.get(key) if rid is not None else None
    if seg is None:
        seg = {"start": start, "end": end, "text": "", "speaker": None, "events": []}
        seg["channel"] = channel
        segments.append(seg)
        by_id[key] = seg
        regions[key] = {"at": [channel, start, end]}
    elif (seg["channel"], seg["start"], seg["end"]) != (channel, start, end):
        raise RegionError(
            f"region {rid!r}: its {r.get('type')} result gives {start}–{end} s on channel "
            f"{channel}, another result of the region {seg['start']}–{seg['end']} s",
            "value.start",
        )
    role = "text" if r.get("type") == "textarea" else "labels"
    entry = regions[key]
    if role in entry:
        raise RegionError(f"region {rid!r} has two {r.get('type')!r} results", "id")
    entry[role] = {**{k: x for k, x in r.items() if k not in _READ}, "ls_value": value}
    if role == "text":
        seg["text"] = _texts(value)
    else:
        seg["speaker"], seg["events"] = _roles(f, value.get("labels"))


# -- segments -> results ----------------------------------------------------------------


def _still(f: FieldType, seg: dict[str, Any], role: str, ls_value: Any) -> bool:
    """Whether a result's value as imported still gives the segment's labels or text."""
    if not isinstance(ls_value, dict):
        return False
    try:
        if _geometry(ls_value) != (seg.get("channel", 0), seg["start"], seg["end"]):
            return False
        if role == "text":
            return _texts(ls_value) == seg.get("text")
        speaker, events = _roles(f, ls_value.get("labels"))
    except RegionError:
        return False
    return speaker == seg.get("speaker") and set(events) == set(seg.get("events") or [])


def region_results(
    f: FieldType,
    value: list[dict[str, Any]],
    names: dict[str, str | None],
    to_name: str,
    kept: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The Label Studio results of a segments value: per segment a ``labels`` result (its
    speaker and events) and a ``textarea`` result (its text), sharing the region's id."""
    by_at = {
        tuple(e["at"]): e
        for e in ((kept or {}).get("regions") or {}).values()
        if isinstance(e, dict) and isinstance(e.get("at"), list)
    }
    out: list[dict[str, Any]] = []
    for i, seg in enumerate(value):
        channel = seg.get("channel", 0)
        entry = by_at.pop((channel, seg["start"], seg["end"]), None) or {}
        rid = next(
            (e["id"] for e in (entry.get("labels"), entry.get("text")) if e and "id" in e),
            f"lf-{f.name}-{i + 1}",
        )
        geo = {"start": seg["start"], "end": seg["end"], "channel": channel}
        labels = ([seg["speaker"]] if seg.get("speaker") else []) + list(seg.get("events") or [])
        wanted = {
            "labels": ("labels", {**geo, "labels": labels}) if labels else None,
            "text": ("textarea", {**geo, "text": [seg["text"]]}) if seg.get("text") else None,
        }
        for role, made in wanted.items():
            control = names.get(role)
            if made is None or not control:
                continue
            given = dict(entry.get(role) or {})
            ls_value = given.pop("ls_value", None)
            result = {"id": rid, "from_name": control, "to_name": to_name, **given}
            result.update(type=made[0], value=made[1])
            if _still(f, seg, role, ls_value):
                result["value"] = ls_value  # as imported, to the last digit
            out.append(result)
    return out


# -- guessing a schema from tasks -------------------------------------------------------


def is_region(r: dict[str, Any], data: dict[str, Any]) -> bool:
    """Whether a result is part of an audio region: a ``textarea`` with times, or a
    ``labels`` result with a ``channel`` or times in fractions of a second, or whole times
    without the covered ``text`` (which text spans give) on an item whose media is audio."""
    v = r.get("value")
    if not isinstance(v, dict) or "start" not in v or "end" not in v:
        return False
    if r.get("type") == "textarea":
        return True
    if r.get("type") != "labels" or "startOffset" in v:
        return False
    if "channel" in v or not all(type(v.get(k)) is int for k in ("start", "end")):
        return True
    source = r.get("source")
    key = source[1:] if isinstance(source, str) and source.startswith("$") else r.get("to_name")
    shown = data.get(str(key)) if "text" not in v else None
    return isinstance(shown, str) and PurePosixPath(shown.split("?")[0]).suffix.lower() in AUDIO


def guess_regions(task: dict[str, Any], fields: dict[str, dict[str, Any]]) -> set[int]:
    """Add the segments fields the audio regions of a task's results make to ``fields``
    (guessed as :mod:`labelfarm.formats.labelstudio` guesses the others); the ``id()`` of
    every result taken."""
    taken: set[int] = set()
    data: dict[str, Any] = task["data"] if isinstance(task.get("data"), dict) else task
    for group in (task.get("annotations") or []) + (task.get("predictions") or []):
        results = group.get("result") if isinstance(group, dict) else None
        regions = [r for r in results or [] if isinstance(r, dict) and is_region(r, data)]
        texted = {r.get("id") for r in regions if r.get("type") == "textarea"}
        named = {r.get("id"): r.get("from_name") for r in regions if r.get("type") == "labels"}
        for r in regions:
            taken.add(id(r))
            name = str(r.get("from_name"))
            if r.get("type") == "textarea" and r.get("id") in named:
                name = str(named[r.get("id")])
            spec = fields.setdefault(name, _guessed(name, r, task))
            if spec.get("type") != "segments":
                raise ValueError(f"from_name {name!r} gives audio regions and other results")
            if r.get("type") == "textarea":
                spec["_regions"].setdefault("text", str(r.get("from_name")))
                continue
            spec["_regions"]["labels"] = name
            role = "_speakers" if r.get("id") in texted else "_events"
            for label in (r.get("value") or {}).get("labels") or []:
                if isinstance(label, str):
                    spec["_events" if is_event_name(label) else role][label] = None
    return taken


def _guessed(name: str, r: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    data = task.get("data")
    if not isinstance(data, dict):
        data = {}
    source = r.get("source")
    key = source[1:] if isinstance(source, str) and source.startswith("$") else None
    if key is None:
        key = next((k for k, v in data.items() if isinstance(v, str)), str(r.get("to_name")))
    obj = {"tag": "Audio", "name": str(r.get("to_name") or key), "value": f"${key}"}
    return {
        "name": name,
        "type": "segments",
        "required": False,
        "_labels": {},
        "_to_name": r.get("to_name"),
        "_regions": {"object": obj},
        "_speakers": {},
        "_events": {},
    }


def finish_guess(spec: dict[str, Any]) -> dict[str, Any]:
    """A guessed segments field's spec, without the notes taken while guessing; returns
    the audio object entry of the ``labelstudio`` section, with the field's ``regions``."""
    reg = spec.pop("_regions")
    events = list(spec.pop("_events"))
    speakers = [s for s in spec.pop("_speakers") if s not in events]
    spec.pop("_labels", None)
    spec["speakers"] = speakers
    if events:
        spec["events"] = list(dict.fromkeys([*events, *DEFAULT_EVENTS]))
    obj = dict(reg["object"])
    obj["regions"] = {"field": spec["name"], "labels": reg.get("labels"), "text": reg.get("text")}
    return obj

"""Gold's pre-fill: on a share of gold items it is deliberately wrong, so an annotator who
accepts every pre-fill unseen fails gold; the answer keeps its shape, and which items are
disguised is keyed with the instance's secret."""

from __future__ import annotations

from typing import Any

from model_helpers import CLASSES, import_rows, text_of, truth

from labelfarm.schema import compile_schema
from labelfarm.services.projects import Project
from labelfarm.services.tasks import prefill

GOLD_HEAVY = 80


def gold_rows(n: int, start: int = 0, right: bool = True) -> list[dict[str, Any]]:
    """Gold items whose imported prediction is their gold answer (a perfect model)."""
    rows = []
    for i in range(start, start + n):
        answer = CLASSES[i % 3]
        rows.append(
            {
                "data": {"text": text_of(i)},
                "gold": {"label": answer},
                "predictions": [{"model": "m", "value": {"label": answer}, "score": 0.9}],
            }
        )
    return rows


def qualify(world: Any, project_id: int, who: dict, answer: Any) -> dict:
    """Work through the qualification; the annotator's standing at the end."""
    client = who["client"]
    while True:
        reply = client.request("POST", f"/projects/{project_id}/next", json={"n": 10})
        if not reply["tasks"]:
            return reply["annotator"]
        client.submit(project_id, [{"task": t["task"], "value": answer(t)} for t in reply["tasks"]])
        standing = client.request("POST", f"/projects/{project_id}/next", json={"n": 1})
        if standing["annotator"]["state"] != "qualifying":
            return standing["annotator"]


def test_rubber_stamping_pre_fills_fails_gold_and_honest_work_passes(world, tmp_path):
    ws = world.workspace()
    project = world.project(
        ws,
        qualification_n=40,
        qualification_pass=0.9,
        wrong_prefill_share=0.25,
        overlap=1,
        schema={"fields": [{"name": "label", "type": "choice", "options": list(CLASSES)}]},
    )
    import_rows(world, project, gold_rows(GOLD_HEAVY), tmp_path)
    stamper = world.user("stamper", role="annotator", workspace=ws)
    shown_wrong = []

    def stamp(task: dict) -> dict:
        pre = task["prediction"]
        assert set(pre) == {"model", "model_version", "value", "score"} and pre["score"] == 0.9
        shown_wrong.append(pre["value"]["label"] != truth(task["data"]["text"]))
        return pre["value"]

    after = qualify(world, project.id, stamper, stamp)
    assert after["state"] == "failed"
    assert 0.1 < sum(shown_wrong) / len(shown_wrong) < 0.45
    honest = world.user("honest", role="annotator", workspace=ws)
    passed = qualify(world, project.id, honest, lambda t: {"label": truth(t["data"]["text"])})
    assert passed["state"] == "active"


def _project(share: float, schema: dict) -> Project:
    from labelfarm.db.project_settings import DEFAULTS

    settings = {**DEFAULTS, "wrong_prefill_share": share, "gold_rate": 0.1}
    return Project(
        id=7,
        workspace_id=1,
        name="p",
        schema_version=1,
        schema=compile_schema(__import__("json").dumps(schema)),
        **settings,
    )


def test_the_share_is_kept_and_fixed_per_item_and_secret():
    project = _project(
        0.25, {"fields": [{"name": "label", "type": "choice", "options": list(CLASSES)}]}
    )
    key = prefill.key_from(b"one secret")
    gold = {"label": "apple"}
    shown = {i: prefill.disguise(key, project, i, {"label": "apple"}, gold) for i in range(2000)}
    wrong = [i for i, v in shown.items() if v != gold]
    assert 0.22 < len(wrong) / 2000 < 0.28
    assert all(set(shown[i]) == {"label"} and shown[i]["label"] in CLASSES for i in wrong)
    again = {i: prefill.disguise(key, project, i, {"label": "apple"}, gold) for i in range(2000)}
    assert again == shown  # fixed per item: a held task shows the same pre-fill
    other = prefill.key_from(b"another secret")
    elsewhere = [i for i in range(2000) if prefill.is_wrong(other, project, i)]
    assert elsewhere != wrong  # without the secret, nobody can tell which
    # a pre-fill already wrong is shown as it is; no share, no disguise
    assert prefill.disguise(key, project, wrong[0], {"label": "banana"}, gold) == {
        "label": "banana"
    }
    none = _project(
        0.0, {"fields": [{"name": "label", "type": "choice", "options": list(CLASSES)}]}
    )
    assert all(prefill.disguise(key, none, i, gold, gold) == gold for i in range(200))


def test_a_multichoice_pre_fill_has_one_option_flipped_within_its_bounds():
    schema = {
        "fields": [
            {
                "name": "tags",
                "type": "multichoice",
                "options": ["a", "b", "c", "d"],
                "min": 1,
                "max": 2,
            }
        ]
    }
    project = _project(1.0, schema)
    key = prefill.key_from(b"s")
    field = project.schema.fields[0]
    for gold_tags in (["a"], ["a", "b"], ["c", "d"]):
        for i in range(50):
            shown = prefill.disguise(key, project, i, {"tags": gold_tags}, {"tags": gold_tags})
            assert set(shown) == {"tags"} and set(shown["tags"]) != set(gold_tags)
            assert len(set(shown["tags"]) ^ set(gold_tags)) in (1, 2)  # one flip, or a swap
            field.validate(shown["tags"])  # still a valid answer

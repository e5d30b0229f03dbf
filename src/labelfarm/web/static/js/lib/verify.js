// Verify mode of the annotate page: a task's prediction shown large, one at a time, to
// accept as it is (Enter: submitted unchanged, marked verified) or reject (R: the fields open,
// pre-filled, to correct it). On with ?mode=verify or the V key; the address keeps the choice.
import { display, number, t, title } from "./i18n.js";

function answer(field, v) {
  if (field.type === "choice") return display(field, v);
  if (field.type === "multichoice") return v.length ? v.map((o) => display(field, o)).join(", ") : t("verify.none");
  if (field.type === "bbox") return t("annotate.boxes", { n: number(v.length) });
  if (field.type === "number") return number(v);
  if (field.type === "segments") { // the transcript's text in time order
    return [...v].sort((x, y) => x.start - y.start).map((x) => x.text).filter(Boolean).join(" ");
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}

export function createVerify(panel, button, fields, on) {
  const state = { on };

  function mark() {
    button.setAttribute("aria-pressed", String(state.on));
    const url = new URL(location.href);
    if (state.on) url.searchParams.set("mode", "verify"); else url.searchParams.delete("mode");
    history.replaceState(history.state, "", url);
  }

  // Draw `value` (the prediction as the fields hold it) with the prediction's model and score.
  function show(prediction, value) {
    const rows = fields.filter((f) => value[f.name] !== undefined).map((f) => {
      const row = document.createElement("div");
      row.className = "verify-field";
      row.dataset.name = f.name;
      const name = document.createElement("span");
      name.className = "verify-title";
      name.textContent = title(f);
      const said = document.createElement("strong");
      said.className = "verify-answer";
      said.dir = "auto";
      said.textContent = answer(f, value[f.name]);
      row.append(name, said);
      return row;
    });
    const about = document.createElement("p");
    about.className = "muted";
    const score = typeof prediction.score === "number" ? ` · ${Math.round(prediction.score * 100)}%` : "";
    about.textContent = t("verify.model", { model: prediction.model }) + score;
    panel.querySelector(".verify-box").replaceChildren(...rows, about);
    panel.hidden = false;
  }

  mark();
  return {
    get on() { return state.on; },
    toggle() { state.on = !state.on; mark(); },
    show,
    hide() { panel.hidden = true; },
  };
}

// The frame every field widget sits in: title, required mark, help, model-suggestion badge.
import { help, t, title } from "../lib/i18n.js";

export function section(field) {
  const el = document.createElement("fieldset");
  el.className = `field field-${field.type}`;
  el.dataset.name = field.name;
  el.tabIndex = -1;
  const legend = document.createElement("legend");
  const name = document.createElement("span");
  name.textContent = title(field);
  legend.append(name);
  if (field.required) {
    const req = document.createElement("span");
    req.className = "req";
    req.textContent = "*";
    req.title = t("annotate.required");
    legend.append(req);
  }
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.hidden = true;
  legend.append(badge);
  el.append(legend);
  const text = help(field);
  if (text) {
    const p = document.createElement("p");
    p.className = "help";
    p.dir = "auto";
    p.textContent = text;
    el.append(p);
  }
  return {
    el,
    // mark the field as filled by the model (until the annotator changes it)
    suggested(prediction) {
      badge.hidden = !prediction;
      badge.classList.remove("changed");
      if (prediction) {
        const score = typeof prediction.score === "number" ? ` ${Math.round(prediction.score * 100)}%` : "";
        badge.textContent = t("annotate.suggested") + score;
      }
    },
    changed() {
      if (!badge.hidden) {
        badge.classList.add("changed");
        badge.textContent = t("annotate.suggestion_changed");
      }
    },
  };
}

// A digit key (1..9, then 0 for the tenth) as an index, or -1.
export function digitIndex(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return -1;
  const m = /^Digit(\d)$|^Numpad(\d)$/.exec(event.code);
  if (!m) return -1;
  const d = Number(m[1] ?? m[2]);
  return d === 0 ? 9 : d - 1;
}

export function optionButton(label, index) {
  const b = document.createElement("button");
  b.type = "button";
  b.tabIndex = -1;
  if (index < 10) {
    const k = document.createElement("kbd");
    k.textContent = String((index + 1) % 10);
    b.append(k, " ");
  }
  const span = document.createElement("span");
  span.textContent = label;
  b.append(span);
  b.setAttribute("aria-pressed", "false");
  return b;
}

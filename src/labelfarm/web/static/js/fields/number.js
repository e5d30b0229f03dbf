// number: a number within the field's bounds. Digits typed while active go to the box.
import { section } from "./section.js";

export function create(field, env) {
  const frame = section(field);
  const input = document.createElement("input");
  input.type = "number";
  input.name = field.name;
  input.inputMode = field.integer ? "numeric" : "decimal";
  if (field.min !== null && field.min !== undefined) input.min = field.min;
  if (field.max !== null && field.max !== undefined) input.max = field.max;
  input.step = field.integer ? "1" : "any";
  input.addEventListener("input", () => { frame.changed(); env.changed(widget); });
  input.addEventListener("focus", () => env.activate(widget, false));
  frame.el.append(input);

  const widget = {
    field,
    el: frame.el,
    input,
    load(task, initial, prediction) {
      input.value = typeof initial === "number" ? String(initial) : "";
      frame.suggested(prediction && input.value ? prediction : null);
    },
    value() {
      if (input.value.trim() === "") return undefined;
      const n = Number(input.value);
      return Number.isFinite(n) ? (field.integer ? Math.round(n) : n) : undefined;
    },
    focus: () => input.focus(),
    key: () => false,
  };
  return widget;
}

// text: free text in its own direction. Enter submits (Ctrl+Enter in a multi-line box).
import { section } from "./section.js";

export function create(field, env) {
  const frame = section(field);
  const input = field.multiline ? document.createElement("textarea") : document.createElement("input");
  if (field.multiline) input.rows = 4; else input.type = "text";
  input.dir = "auto";
  input.maxLength = field.max_length || 10000;
  input.name = field.name;
  input.autocomplete = "off";
  input.addEventListener("input", () => { frame.changed(); env.changed(widget); });
  input.addEventListener("focus", () => env.activate(widget, false));
  frame.el.append(input);

  const widget = {
    field,
    el: frame.el,
    input,
    load(task, initial, prediction) {
      input.value = typeof initial === "string" ? initial : "";
      frame.suggested(prediction && input.value ? prediction : null);
    },
    value: () => (input.value.trim() === "" ? undefined : input.value),
    focus: () => input.focus(),
    key: () => false,
  };
  return widget;
}

// multichoice: any set of options. Digit keys toggle the option with that number.
import { display } from "../lib/i18n.js";
import { digitIndex, optionButton, section } from "./section.js";

export function create(field, env) {
  const frame = section(field);
  const box = document.createElement("div");
  box.className = "options";
  box.setAttribute("role", "group");
  let chosen = new Set();
  const buttons = field.options.map((opt, i) => {
    const b = optionButton(display(field, opt), i);
    b.addEventListener("click", () => { toggle(opt); env.activate(widget); });
    box.append(b);
    return b;
  });
  frame.el.append(box);

  function draw() {
    field.options.forEach((opt, i) => buttons[i].setAttribute("aria-pressed", String(chosen.has(opt))));
  }
  function toggle(opt) {
    if (chosen.has(opt)) chosen.delete(opt); else chosen.add(opt);
    draw();
    frame.changed();
    env.changed(widget);
  }

  const widget = {
    field,
    el: frame.el,
    load(task, initial, prediction) {
      chosen = new Set(Array.isArray(initial) ? initial.filter((o) => field.options.includes(o)) : []);
      frame.suggested(prediction && Array.isArray(initial) ? prediction : null);
      draw();
    },
    // canonical order: the schema's option order
    value: () => field.options.filter((o) => chosen.has(o)),
    empty: () => false,
    key(event) {
      const i = digitIndex(event);
      if (i >= 0 && i < field.options.length) {
        toggle(field.options[i]);
        return true;
      }
      return false;
    },
  };
  return widget;
}

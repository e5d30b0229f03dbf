// choice: exactly one option. Digit keys pick the option with that number.
import { display } from "../lib/i18n.js";
import { digitIndex, optionButton, section } from "./section.js";

export function create(field, env) {
  const frame = section(field);
  const box = document.createElement("div");
  box.className = "options";
  box.setAttribute("role", "radiogroup");
  let value;
  const buttons = field.options.map((opt, i) => {
    const b = optionButton(display(field, opt), i);
    b.setAttribute("role", "radio");
    b.addEventListener("click", () => { pick(opt); env.activate(widget); });
    box.append(b);
    return b;
  });
  frame.el.append(box);

  function draw() {
    field.options.forEach((opt, i) => {
      buttons[i].setAttribute("aria-pressed", String(opt === value));
      buttons[i].setAttribute("aria-checked", String(opt === value));
    });
  }
  function pick(opt) {
    value = opt;
    draw();
    frame.changed();
    env.changed(widget);
  }

  const widget = {
    field,
    el: frame.el,
    load(task, initial, prediction) {
      value = field.options.includes(initial) ? initial : undefined;
      frame.suggested(prediction && value !== undefined ? prediction : null);
      draw();
    },
    value: () => value,
    key(event) {
      const i = digitIndex(event);
      if (i >= 0 && i < field.options.length) {
        pick(field.options[i]);
        return true;
      }
      return false;
    },
  };
  return widget;
}

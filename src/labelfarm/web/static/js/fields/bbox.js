// bbox: boxes on the image, in pixels of the original. Draw with the mouse; click a box to
// select it, drag to move, drag a corner to resize. Keys: digits pick the class (of the
// selected box, and of the next one drawn), [ ] select, arrows nudge, Shift+arrows resize,
// Delete removes, Escape deselects.
import { display, t } from "../lib/i18n.js";
import { shortcut } from "../lib/keys.js";
import { digitIndex, optionButton, section } from "./section.js";

const SVG = "http://www.w3.org/2000/svg";
const HANDLE_PX = 10;
const MIN_PX = 4;
const CORNERS = ["nw", "ne", "sw", "se"];

export function create(field, env) {
  const frame = section(field);
  const picker = document.createElement("div");
  picker.className = "options";
  const buttons = field.labels.map((label, i) => {
    const b = optionButton(display(field, label), i);
    b.addEventListener("click", () => { classKey(i); env.activate(widget); });
    picker.append(b);
    return b;
  });
  const list = document.createElement("ol");
  list.className = "boxes";
  frame.el.append(picker, list);

  let boxes = [];
  let selected = -1;
  let current = 0;
  let stage = null;
  let svg = null;
  let drag = null;
  let token = 0;

  const W = () => stage.width;
  const H = () => stage.height;
  const scale = () => W() / svg.getBoundingClientRect().width; // image px per screen px
  const round = (v) => Math.round(v * 10) / 10;
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

  function point(e) {
    const r = svg.getBoundingClientRect();
    return { x: clamp(((e.clientX - r.left) * W()) / r.width, 0, W()), y: clamp(((e.clientY - r.top) * H()) / r.height, 0, H()) };
  }

  function attach(s) {
    stage = s;
    svg = document.createElementNS(SVG, "svg");
    svg.classList.add("overlay");
    svg.setAttribute("viewBox", `0 0 ${W()} ${H()}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.addEventListener("pointerdown", down);
    svg.addEventListener("pointermove", move);
    svg.addEventListener("pointerup", up);
    svg.addEventListener("pointercancel", up);
    stage.el.append(svg);
    draw();
  }

  function down(e) {
    if (e.button !== 0) return;
    env.activate(widget);
    const p = point(e);
    const handle = e.target.dataset.handle;
    const index = e.target.dataset.index !== undefined ? Number(e.target.dataset.index) : -1;
    if (handle && selected >= 0) {
      drag = { kind: "resize", corner: handle, start: { ...boxes[selected] } };
    } else if (index >= 0) {
      selected = index;
      drag = { kind: "move", from: p, start: { ...boxes[index] } };
    } else {
      selected = -1;
      drag = { kind: "draw", from: p, to: p };
    }
    svg.setPointerCapture(e.pointerId);
    e.preventDefault();
    draw();
  }

  function move(e) {
    if (!drag) return;
    const p = point(e);
    if (drag.kind === "draw") {
      drag.to = p;
    } else if (drag.kind === "move") {
      const b = boxes[selected];
      b.x = round(clamp(drag.start.x + p.x - drag.from.x, 0, W() - b.w));
      b.y = round(clamp(drag.start.y + p.y - drag.from.y, 0, H() - b.h));
    } else {
      const s = drag.start;
      let x0 = s.x, y0 = s.y, x1 = s.x + s.w, y1 = s.y + s.h;
      if (drag.corner.includes("w")) x0 = p.x; else x1 = p.x;
      if (drag.corner.includes("n")) y0 = p.y; else y1 = p.y;
      Object.assign(boxes[selected], rect(x0, y0, x1, y1));
    }
    draw();
  }

  function up() {
    if (!drag) return;
    if (drag.kind === "draw") {
      const r = rect(drag.from.x, drag.from.y, drag.to.x, drag.to.y);
      if (r.w / scale() >= MIN_PX && r.h / scale() >= MIN_PX) {
        boxes.push({ ...r, label: field.labels[current] });
        selected = boxes.length - 1;
      }
    }
    drag = null;
    changed();
  }

  function rect(x0, y0, x1, y1) {
    return { x: round(Math.min(x0, x1)), y: round(Math.min(y0, y1)), w: round(Math.abs(x1 - x0)), h: round(Math.abs(y1 - y0)) };
  }

  function changed() {
    frame.changed();
    draw();
    env.changed(widget);
  }

  function draw() {
    buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === current)));
    list.replaceChildren(...boxes.map((b, i) => {
      const li = document.createElement("li");
      li.className = i === selected ? "selected" : "";
      const sw = document.createElement("span");
      sw.className = `swatch c${field.labels.indexOf(b.label) % 8}`;
      li.append(sw, `${i + 1}. ${display(field, b.label)} · ${Math.round(b.x)}, ${Math.round(b.y)} · ${Math.round(b.w)}×${Math.round(b.h)}`);
      li.addEventListener("click", () => { selected = i; env.activate(widget); draw(); });
      return li;
    }));
    if (!svg) return;
    const k = svg.getBoundingClientRect().width ? scale() : 1;
    const shapes = boxes.map((b, i) => {
      const r = el("rect", { x: b.x, y: b.y, width: b.w, height: b.h });
      r.classList.add("box", `c${field.labels.indexOf(b.label) % 8}`);
      if (i === selected) r.classList.add("selected");
      r.dataset.index = String(i);
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = display(field, b.label);
      r.append(tip);
      return r;
    });
    if (selected >= 0 && boxes[selected]) {
      const b = boxes[selected];
      const hs = HANDLE_PX * k;
      for (const c of CORNERS) {
        const x = c.includes("w") ? b.x : b.x + b.w;
        const y = c.includes("n") ? b.y : b.y + b.h;
        const h = el("rect", { x: x - hs / 2, y: y - hs / 2, width: hs, height: hs });
        h.classList.add("handle", `h-${c}`);
        h.dataset.handle = c;
        shapes.push(h);
      }
    }
    if (drag && drag.kind === "draw") {
      const r = rect(drag.from.x, drag.from.y, drag.to.x, drag.to.y);
      const d = el("rect", { x: r.x, y: r.y, width: r.w, height: r.h });
      d.classList.add("draft");
      shapes.push(d);
    }
    svg.replaceChildren(...shapes);
  }

  function classKey(i) {
    current = i;
    if (selected >= 0) boxes[selected].label = field.labels[i];
    changed();
  }

  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  const widget = {
    field,
    el: frame.el,
    load(task, initial, prediction, stageInfo) {
      token += 1;
      boxes = Array.isArray(initial) ? initial.map((b) => ({ ...b })) : [];
      selected = -1;
      drag = null;
      svg = null;
      stage = null;
      frame.suggested(prediction && boxes.length ? prediction : null);
      draw();
      if (stageInfo) {
        const mine = token;
        stageInfo.ready.then((s) => { if (mine === token && s.img) attach(s); });
      }
    },
    value: () => (boxes.length ? boxes.map((b) => ({ ...b })) : undefined),
    key(e) {
      const i = digitIndex(e);
      if (i >= 0 && i < field.labels.length) { classKey(i); return true; }
      const k = shortcut(e);
      if (k === "[" || k === "]") {
        if (!boxes.length) return true;
        selected = k === "]" ? (selected + 1) % boxes.length : (selected - 1 + boxes.length) % boxes.length;
        draw();
        return true;
      }
      if (selected < 0) return false;
      const b = boxes[selected];
      if (e.key === "Delete" || e.key === "Backspace") {
        boxes.splice(selected, 1);
        selected = -1;
        changed();
        return true;
      }
      if (e.key === "Escape") { selected = -1; draw(); return true; }
      const arrow = ARROWS[e.key];
      if (arrow && stage) {
        const step = Math.max(1, round(scale())) * (e.altKey ? 10 : 1);
        if (e.shiftKey) {
          b.w = round(clamp(b.w + arrow[0] * step, step, W() - b.x));
          b.h = round(clamp(b.h + arrow[1] * step, step, H() - b.y));
        } else {
          b.x = round(clamp(b.x + arrow[0] * step, 0, W() - b.w));
          b.y = round(clamp(b.y + arrow[1] * step, 0, H() - b.h));
        }
        changed();
        return true;
      }
      return false;
    },
    describe: () => t("annotate.boxes", { n: boxes.length }),
  };
  return widget;
}

function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

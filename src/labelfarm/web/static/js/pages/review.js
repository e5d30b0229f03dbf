// The review queue: pick an item, see every annotation side by side, decide.
// Keys: 1-9 accept annotation N, o opens the override form, j / k move along the queue.
import { api, ApiError, setCsrf } from "../lib/net.js";
import { showDiffs } from "./review_diff.js";

const root = document.getElementById("review");
const panel = document.getElementById("item-panel");
const status = document.getElementById("review-status");
const msg = JSON.parse(document.getElementById("review-boot").textContent).messages;
const project = root.dataset.project;
const base = `/api/v1/projects/${project}/review`;
setCsrf(root.dataset.csrf);

let current = null; // the item shown: the API's answer
let choices = [];   // the current annotation of each annotator, numbered from 1

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function show(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(", ");
  return typeof value === "string" ? value : JSON.stringify(value);
}

function valueList(value) {
  const dl = el("dl", { class: "value" });
  for (const [name, v] of Object.entries(value || {})) {
    dl.append(el("dt", { dir: "auto" }, name), el("dd", { dir: "auto" }, show(v)));
  }
  return dl;
}

function fail(err) {
  status.textContent = err instanceof ApiError ? err.message : msg.offline;
}

function buttons() { return [...document.querySelectorAll(".queue-item")]; }

async function open(itemId) {
  try {
    current = await api("GET", `${base}/${itemId}`);
  } catch (err) { fail(err); return; }
  for (const b of buttons()) b.classList.toggle("selected", b.dataset.item === String(itemId));
  status.textContent = "";
  draw();
  showDiffs(panel, base, current); // transcripts: word differences
}

function draw() {
  const { item, annotations, label, prediction, reviews } = current;
  choices = annotations.filter((a) => a.current);
  const media = item.media_url ? el("img", { src: item.media_url, alt: `${msg.item} #${item.id}`, class: "media" }) : null;
  const data = el("pre", { class: "data", dir: "auto" }, JSON.stringify(item.data, null, 2));
  const head = el("h2", {}, `${msg.item} #${item.id}`, item.external_id ? el("span", { class: "muted" }, ` ${item.external_id}`) : null);
  const summary = el("div", { class: "summary" });
  summary.append(el("h3", {}, msg.current_label));
  if (label) {
    summary.append(valueList(label.value), el("p", { class: "muted" },
      `${msg.confidence}: ${(100 * label.item_confidence).toFixed(1)}% · ${msg.method}: ${label.method}`));
  } else summary.append(el("p", { class: "muted" }, msg.none));
  if (item.gold) summary.append(el("h3", {}, msg.gold), valueList(item.gold));
  if (prediction) summary.append(el("h3", {}, `${msg.prediction} (${prediction.model})`), valueList(prediction.value));
  if (current.label_issue) summary.append(labelIssue(current.label_issue));

  const side = el("ol", { class: "side-by-side", "aria-label": msg.annotations });
  annotations.forEach((a) => {
    const n = choices.indexOf(a) + 1;
    const card = el("li", { class: `annotation${a.current ? "" : " superseded"}` });
    card.append(el("p", { class: "who" }, n ? el("kbd", {}, String(n)) : null, ` ${a.annotator}`,
      a.display_name ? el("span", { class: "muted", dir: "auto" }, ` ${a.display_name}`) : null));
    card.append(valueList(a.value));
    const notes = [];
    if (!a.current) notes.push(msg.superseded);
    if (a.status === "late") notes.push(`${msg.late} (${a.late_reason})`);
    if (a.excluded) notes.push(`${msg.excluded} (${msg[`excluded_${a.excluded}`] || a.excluded})`);
    if (a.gold_score !== undefined && a.gold_score !== null) notes.push(`${msg.gold_score}: ${a.gold_score}`);
    if (notes.length) card.append(el("p", { class: "muted" }, notes.join(" · ")));
    if (a.current) {
      const accept = el("button", { type: "button", class: "accept" }, `${msg.accept} `, el("kbd", {}, String(n)));
      accept.addEventListener("click", () => decide({ decision: "accept", annotation_id: a.annotation_id }));
      card.append(accept);
    }
    side.append(card);
  });

  const overrideButton = el("button", { type: "button" }, `${msg.override} `, el("kbd", {}, "o"));
  overrideButton.addEventListener("click", openOverride);
  const history = el("div", { class: "history" });
  if (reviews.length) {
    history.append(el("h3", {}, msg.history));
    const list = el("ol");
    for (const r of reviews) {
      list.append(el("li", {}, `${r.at} · ${r.reviewer} · ${r.decision}: `, el("span", { dir: "auto" }, show(r.value)),
        r.note ? el("span", { class: "muted", dir: "auto" }, ` — ${r.note}`) : null));
    }
    history.append(list);
  }
  panel.replaceChildren(head, el("div", { class: "item-top" }, media, data, summary), side,
    el("p", { class: "actions" }, overrideButton), el("div", { id: "override" }), history);
}

// A suspected label error: the detector's reason, and "not an error" (the label stays).
function labelIssue(issue) {
  const box = el("div", { class: "label-issue" }, el("h3", {}, msg.label_error),
    el("p", { dir: "auto" }, issue.reason.text || ""));
  const dismiss = el("button", { type: "button", class: "not-an-error" }, msg.not_an_error);
  dismiss.addEventListener("click", async () => {
    try {
      await api("POST", `/api/v1/projects/${project}/label-errors/${issue.item_id}/dismiss`, {});
    } catch (err) { fail(err); return; }
    status.textContent = msg.decided;
    open(current.item.id);
  });
  box.append(el("p", { class: "actions" }, dismiss));
  return box;
}

// The override form's controls are kept by reference, never looked up by name: a field may
// be called anything (note, action, submit...), and a form's named elements would collide.
function fieldInput(field, value) {
  if (field.type === "choice") {
    const select = el("select", {});
    for (const option of field.options) {
      select.append(el("option", { value: option, selected: option === value }, option));
    }
    return { node: select, read: () => select.value };
  }
  if (field.type === "multichoice") {
    const box = el("fieldset", { class: "options" }, el("legend", { dir: "auto" }, field.name));
    const checks = field.options.map((option) => {
      const check = el("input", { type: "checkbox", value: option, checked: (value || []).includes(option) });
      box.append(el("label", { class: "check" }, check, option));
      return check;
    });
    return { node: box, read: () => checks.filter((c) => c.checked).map((c) => c.value) };
  }
  if (field.type === "text") {
    const text = el("textarea", { rows: 3, dir: "auto", value: typeof value === "string" ? value : "" });
    return { node: text, read: () => text.value, optional: true };
  }
  const area = el("textarea", { rows: 3, dir: "auto", value: value === undefined ? "" : JSON.stringify(value) });
  return { node: area, read: () => area.value.trim(), json: true, optional: true };
}

function openOverride() {
  if (!current) return;
  const start = (current.label && current.label.value) || {};
  const form = el("form", { class: "card stack override" });
  const inputs = current.fields.map((field) => [field, fieldInput(field, start[field.name])]);
  for (const [field, input] of inputs) {
    form.append(field.type === "multichoice" ? input.node : el("label", { dir: "auto" }, field.name, input.node));
  }
  const note = el("input", { class: "review-note", dir: "auto" });
  form.append(el("p", { class: "muted" }, msg.json_help), el("label", {}, msg.note, note));
  const cancel = el("button", { type: "button" }, msg.cancel);
  cancel.addEventListener("click", () => form.remove());
  form.append(el("p", { class: "actions" }, el("button", { type: "submit", class: "primary" }, msg.save), cancel));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = {};
    for (const [field, input] of inputs) {
      const given = input.read();
      if (input.optional && !given) continue;
      if (!input.json) { value[field.name] = given; continue; }
      try { value[field.name] = JSON.parse(given); } catch { status.textContent = `${msg.bad_json} (${field.name})`; return; }
    }
    decide({ decision: "override", value, note: note.value });
  });
  document.getElementById("override").replaceChildren(form);
  form.querySelector("select, input, textarea")?.focus();
}

async function decide(body) {
  if (!current) return;
  try {
    await api("POST", `${base}/${current.item.id}`, body);
  } catch (err) { fail(err); return; }
  status.textContent = msg.decided;
  const list = buttons();
  const here = list.findIndex((b) => b.dataset.item === String(current.item.id));
  list[here]?.closest("li")?.classList.add("done");
  const next = list.slice(here + 1).find((b) => !b.closest("li").classList.contains("done"));
  if (next) open(next.dataset.item); else open(current.item.id);
}

function move(step) {
  const list = buttons();
  const here = current ? list.findIndex((b) => b.dataset.item === String(current.item.id)) : -1;
  const target = list[Math.max(0, Math.min(list.length - 1, here + step))];
  if (target) open(target.dataset.item);
}

root.addEventListener("click", (e) => {
  const button = e.target.closest(".queue-item");
  if (button) open(button.dataset.item);
});

addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest("input, textarea, select")) {
    if (e.key === "Escape") document.querySelector("#override form")?.remove();
    return;
  }
  if (/^[1-9]$/.test(e.key) && choices[Number(e.key) - 1]) {
    e.preventDefault();
    decide({ decision: "accept", annotation_id: choices[Number(e.key) - 1].annotation_id });
  } else if (e.key === "o") {
    e.preventDefault();
    openOverride();
  } else if (e.key === "j") move(1);
  else if (e.key === "k") move(-1);
});

const wanted = new URLSearchParams(location.search).get("item");
if (wanted) open(wanted);
else if (buttons().length) open(buttons()[0].dataset.item);

// Create a project, or change its settings and schema. The schema is YAML text; the
// server's errors name the line, which is marked in the editor's gutter.
import { api, ApiError, setCsrf } from "../lib/net.js";

const form = document.getElementById("project-form");
const editor = form.querySelector("#schema");
const gutter = form.querySelector(".gutter");
const errors = form.querySelector(".errors");
const status = form.querySelector(".status");
setCsrf(form.dataset.csrf);
let badLines = new Set();

function drawGutter() {
  const n = editor.value.split("\n").length;
  gutter.replaceChildren(...Array.from({ length: n }, (_, i) => {
    const span = document.createElement("span");
    span.textContent = `${i + 1}\n`;
    if (badLines.has(i + 1)) span.className = "bad";
    return span;
  }));
  gutter.scrollTop = editor.scrollTop;
}
editor.addEventListener("input", () => { badLines = new Set(); drawGutter(); });
editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
drawGutter();

// The quality settings: one input per setting, named as the API names it.
const settingInputs = [...form.querySelectorAll("[data-setting]")];

function settingValues() {
  const out = {};
  for (const input of settingInputs) {
    if (input.dataset.setting === "check") out[input.name] = input.checked;
    else if (input.value.trim() === "") continue; // left empty: unchanged (default when new)
    else out[input.name] = input.dataset.setting === "number" ? Number(input.value) : input.value;
  }
  return out;
}

function markSettings(details) {
  const bad = new Set(details.map((d) => d.field));
  for (const input of settingInputs) {
    if (bad.has(input.name)) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  settingInputs.find((input) => bad.has(input.name))?.focus();
}

function showErrors(err) {
  const details = err.details.length ? err.details : [{ reason: err.message }];
  markSettings(details);
  badLines = new Set(details.map((d) => d.line).filter(Boolean));
  errors.replaceChildren(...details.map((d) => {
    const li = document.createElement("li");
    const where = d.line ? form.dataset.msgLine.replace("{line}", d.line) + " " : "";
    li.textContent = where + [d.field, d.reason].filter(Boolean).join(": ") || err.message;
    return li;
  }));
  if (!err.details.length || err.details.some((d) => d.line)) errors.prepend(Object.assign(document.createElement("li"), { textContent: err.message }));
  errors.hidden = false;
  drawGutter();
  const first = Math.min(...badLines);
  if (Number.isFinite(first)) {
    const start = editor.value.split("\n").slice(0, first - 1).join("\n").length + (first > 1 ? 1 : 0);
    editor.focus();
    editor.setSelectionRange(start, start);
  }
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  errors.hidden = true;
  status.textContent = "";
  markSettings([]);
  const f = form.elements;
  const body = {
    name: f.name.value.trim(),
    description: f.description.value,
    guidelines: f.guidelines.value,
    overlap: Number(f.overlap.value),
    lease_seconds: Math.round(Number(f.lease_minutes.value) * 60),
    max_live_leases: Number(f.max_live_leases.value),
    max_checkout_hours: Number(f.max_checkout_hours.value),
    ordering: f.ordering.value,
    sampler: f.sampler.value,
    ...settingValues(),
    schema: editor.value,
  };
  try {
    if (form.dataset.mode === "create") {
      const project = await api("POST", `/api/v1/workspaces/${form.dataset.workspace}/projects`, body);
      location.assign(`/projects/${project.id}/import`);
    } else {
      await api("PATCH", `/api/v1/projects/${form.dataset.project}`, body);
      status.textContent = form.dataset.msgSaved;
    }
  } catch (err) {
    if (err instanceof ApiError) showErrors(err); else status.textContent = form.dataset.msgOffline;
  }
});

// The models page: train a version, promote or retire one, pre-label now; the model jobs'
// progress polled from the API until they end (then the page shows their outcome).
import { api, ApiError, setCsrf } from "../lib/net.js";

const root = document.getElementById("models");
const status = document.getElementById("models-status");
const msg = JSON.parse(document.getElementById("models-messages").textContent);
const base = `/api/v1/projects/${root.dataset.project}/models`;
const POLL_MS = 1000;
const ENDED = new Set(["done", "failed", "cancelled"]);
setCsrf(root.dataset.csrf);

const fill = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));

function fail(err) {
  status.textContent = err instanceof ApiError ? err.message : msg.offline;
  status.classList.add("error");
}

async function act(button, method, path, body) {
  button.disabled = true;
  status.classList.remove("error");
  try {
    const answer = await api(method, path, body);
    const job = answer && (answer.job || (answer.kind && answer));
    if (job) status.textContent = fill(msg.started, { id: job.id });
    location.reload(); // the page lists the new job (polled below) or the version's new state
  } catch (err) {
    fail(err);
    button.disabled = false;
  }
}

document.getElementById("train-form")?.addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  act(form.querySelector("button[type=submit]"), "POST", `${base}/train`, { predictor: form.elements.predictor.value });
});

root.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-action]");
  if (!button) return;
  const { action, version } = button.dataset;
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  act(button, "POST", `${base}/${version}/${action}`, action === "predict" ? {} : undefined);
});

function draw(li, job) {
  li.dataset.state = job.state;
  const state = li.querySelector(".job-state");
  state.textContent = msg.states[job.state] || job.state;
  state.className = `job-state state-${job.state}`;
  const bar = li.querySelector("progress");
  const total = job.progress_total || 0;
  bar.max = total || 1;
  bar.value = job.state === "done" && !job.progress_done ? bar.max : job.progress_done;
  li.querySelector(".job-count").textContent = total ? fill(msg.progress, { done: job.progress_done, total }) : "";
  li.querySelector(".job-message").textContent = job.error || "";
}

async function poll(li) {
  try {
    const job = await api("GET", `/api/v1/jobs/${li.dataset.job}`);
    draw(li, job);
    if (ENDED.has(job.state)) {
      setTimeout(() => location.reload(), 800); // its version, evaluation and matrix
      return;
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return;
  }
  setTimeout(() => poll(li), POLL_MS);
}

for (const li of document.querySelectorAll(".job[data-open]")) poll(li);

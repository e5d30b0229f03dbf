// The jobs page: while any job is queued or running, the project's jobs are polled from the
// API and each row's state, progress bar and message redrawn; a new job reloads the page.
// "Cancel" asks the server to cancel a job (a running one stops at its next progress report).
import { api, ApiError, setCsrf } from "../lib/net.js";

const root = document.getElementById("jobs");
const status = document.getElementById("jobs-status");
const msg = JSON.parse(document.getElementById("jobs-messages").textContent);
const list = `/api/v1/projects/${root.dataset.project}/jobs?limit=${root.dataset.limit}`;
const POLL_MS = 1500;
const OPEN = new Set(["queued", "running"]);
setCsrf(root.dataset.csrf);

const fill = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
const rows = () => new Map([...root.querySelectorAll("tr.job")].map((tr) => [Number(tr.dataset.job), tr]));

function fail(err) {
  status.textContent = err instanceof ApiError ? err.message : msg.offline;
  status.classList.add("error");
}

function draw(tr, job) {
  tr.dataset.state = job.state;
  const state = tr.querySelector(".job-state");
  state.textContent = job.cancel_requested && OPEN.has(job.state) ? msg.stopping : msg.states[job.state] || job.state;
  state.className = `job-state state-${job.state}`;
  const bar = tr.querySelector("progress");
  const total = job.progress_total || 0;
  if (job.state === "running" && !total) {
    bar.removeAttribute("value"); // how far is unknown: an indeterminate bar
  } else {
    bar.max = total || 1;
    bar.value = job.state === "done" ? bar.max : job.progress_done;
  }
  tr.querySelector(".job-count").textContent = total ? fill(msg.count, { done: job.progress_done, total }) : "";
  const message = tr.querySelector(".job-message");
  message.textContent = job.state === "failed" ? job.error || "" : job.message;
  message.classList.toggle("error", job.state === "failed");
  tr.querySelector(".job-runs").textContent = `${job.attempts}/${job.max_attempts}`;
  const cancel = tr.querySelector("button[data-cancel]");
  if (cancel && !OPEN.has(job.state)) cancel.remove();
  else if (cancel && job.cancel_requested) cancel.disabled = true;
}

async function poll() {
  let open = true;
  try {
    const { jobs } = await api("GET", list);
    const shown = rows();
    if (jobs.some((job) => !shown.has(job.id))) {
      location.reload(); // a job started elsewhere: the server renders its row
      return;
    }
    for (const job of jobs) draw(shown.get(job.id), job);
    open = jobs.some((job) => OPEN.has(job.state));
    status.textContent = "";
    status.classList.remove("error");
  } catch (err) {
    fail(err);
  }
  if (open) setTimeout(poll, POLL_MS);
}

root.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-cancel]");
  if (!button || !confirm(fill(msg.confirm, { id: button.dataset.cancel }))) return;
  button.disabled = true;
  try {
    const job = await api("POST", `/api/v1/jobs/${button.dataset.cancel}/cancel`);
    draw(button.closest("tr.job"), job);
  } catch (err) {
    fail(err);
    button.disabled = false;
  }
});

if ([...rows().values()].some((tr) => OPEN.has(tr.dataset.state))) setTimeout(poll, POLL_MS);

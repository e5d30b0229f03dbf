// Exports from the project page: each runs as a job on the server; its progress is shown
// until the file is ready, then a link downloads it.
import { api, ApiError, setCsrf } from "../lib/net.js";

const box = document.getElementById("export-jobs");
const status = box.querySelector(".status");
const bar = box.querySelector(".export-progress");
const ready = box.querySelector(".export-ready");
const link = ready.querySelector("a");
const buttons = box.querySelectorAll("button.export-start");
const project = box.dataset.project;
const msg = box.dataset;
const POLL_MS = 700;
setCsrf(box.dataset.csrf);

function busy(on) {
  for (const b of buttons) b.disabled = on;
}

async function follow(jobId) {
  for (;;) {
    const answer = await api("GET", `/api/v1/projects/${project}/exports/${jobId}`);
    const job = answer.job;
    if (job.state === "done" && answer.download) {
      bar.value = 100;
      status.textContent = "";
      link.href = answer.download;
      ready.hidden = false;
      return;
    }
    if (["done", "failed", "cancelled"].includes(job.state)) {
      status.textContent = `${msg.msgFailed} ${job.error || job.state}`;
      return;
    }
    if (job.fraction !== null && job.fraction !== undefined) bar.value = 100 * job.fraction;
    status.textContent = `${msg.msgPreparing} ${job.message || ""}`;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

for (const button of buttons) {
  button.addEventListener("click", async () => {
    busy(true);
    ready.hidden = true;
    bar.hidden = false;
    bar.value = 0;
    status.textContent = msg.msgPreparing;
    try {
      const { job } = await api("POST", `/api/v1/projects/${project}/exports`, { format: button.dataset.format });
      await follow(job.id);
    } catch (err) {
      status.textContent = err instanceof ApiError ? `${msg.msgFailed} ${err.message}` : msg.msgOffline;
    } finally {
      busy(false);
    }
  });
}

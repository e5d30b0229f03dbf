// Upload a file with a progress bar; the server queues its import as a job, whose progress
// (the file read, rows and items) is followed until it ends; then the report: the items
// imported and what was left out on purpose, or every bad row.
import { api, ApiError, setCsrf } from "../lib/net.js";

const form = document.getElementById("import-form");
const bar = form.querySelector("progress.upload");
const status = form.querySelector(".status");
const detail = form.querySelector(".job-detail");
const cancel = form.querySelector("button.cancel");
const table = form.querySelector(".errors-table");
const notes = form.querySelector(".import-notes");
const project = form.dataset.project;
const msg = form.dataset;
const POLL_MS = 700;
let following = null; // the job being followed
setCsrf(form.dataset.csrf);

function upload(file, format) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const name = encodeURIComponent(file.name);
    const given = format ? `format=${encodeURIComponent(format)}&` : "";  // none: the server tells
    xhr.open("POST", `/api/v1/projects/${project}/imports/jobs?${given}filename=${name}`);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total;
    };
    xhr.upload.onload = () => { bar.removeAttribute("value"); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new Error("network"));
    xhr.send(file);
  });
}

function cell(text) {
  const td = document.createElement("td");
  td.dir = "auto";
  td.textContent = text ?? "";
  return td;
}

function showErrors(details) {
  const rows = (details || []).map((d) => {
    const tr = document.createElement("tr");
    tr.append(cell(d.location), cell(d.field), cell(d.reason)); // location: line 12, cats/3.jpg
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = rows.length === 0;
}

function showNotes(list) {
  const items = (list || []).map((n) => {
    const li = document.createElement("li");
    li.dir = "auto";
    li.textContent = msg.msgNote.replace("{reason}", n.reason).replace("{n}", n.count);
    return li;
  });
  notes.querySelector("ul").replaceChildren(...items);
  notes.hidden = items.length === 0;
}

function showProgress(job) {
  if (job.state === "queued") {
    status.textContent = msg.msgQueued;
  } else {
    status.textContent = msg.msgProcessing;
  }
  if (job.fraction !== null && job.fraction !== undefined) bar.value = 100 * job.fraction;
  else bar.removeAttribute("value");
  detail.textContent = job.message || "";
}

function finish(job, record) {
  following = null;
  sessionStorage.removeItem(`import-job-${project}`);
  cancel.hidden = true;
  form.querySelector("button[type=submit]").disabled = false;
  detail.textContent = "";
  bar.value = 100;
  if (job.state === "done") {
    status.textContent = msg.msgDone.replace("{n}", job.result ? job.result.n_items : 0);
    showNotes((job.result && job.result.notes) || (record && record.notes));
  } else if (job.state === "cancelled") {
    status.textContent = msg.msgCancelled;
  } else {
    status.textContent = `${msg.msgFailed} ${job.error || ""}`;
    showErrors(record ? record.errors : []);
  }
  history();
}

async function follow(jobId) {
  following = jobId;
  cancel.hidden = false;
  while (following === jobId) {
    let answer;
    try {
      answer = await api("GET", `/api/v1/projects/${project}/imports/jobs/${jobId}`);
    } catch (err) {
      if (err instanceof ApiError) { status.textContent = err.message; following = null; return; }
      status.textContent = msg.msgOffline; // keep polling: the job goes on without us
      await new Promise((r) => setTimeout(r, 3 * POLL_MS));
      continue;
    }
    if (["done", "failed", "cancelled"].includes(answer.job.state)) {
      finish(answer.job, answer.import);
      return;
    }
    showProgress(answer.job);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

cancel.addEventListener("click", async () => {
  if (following === null) return;
  cancel.disabled = true;
  try {
    await api("POST", `/api/v1/jobs/${following}/cancel`);
  } catch (err) {
    status.textContent = err instanceof ApiError ? err.message : msg.msgOffline;
  } finally {
    cancel.disabled = false;
  }
});

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = form.elements.file.files[0];
  if (!file) return;
  table.hidden = true;
  notes.hidden = true;
  bar.hidden = false;
  bar.value = 0;
  status.textContent = msg.msgUploading;
  detail.textContent = "";
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { status: code, body } = await upload(file, form.elements.format.value);
    if (code === 202) {
      sessionStorage.setItem(`import-job-${project}`, String(body.job.id));
      showProgress(body.job);
      await follow(body.job.id);
      return;
    }
    const err = (body && body.error) || { message: `HTTP ${code}`, details: [] };
    status.textContent = `${msg.msgFailed} ${err.message}`;
    showErrors(err.details);
  } catch {
    status.textContent = msg.msgOffline;
  }
  button.disabled = false;
});

async function history() {
  const response = await fetch(`/api/v1/projects/${project}/imports`, { credentials: "same-origin" });
  if (!response.ok) return;
  const { imports } = await response.json();
  const rows = imports.slice(0, 20).map((imp) => {
    const tr = document.createElement("tr");
    const when = new Date((imp.started_at || 0) * 1000).toLocaleString(document.documentElement.lang);
    const n = cell(imp.n_items);
    n.className = "num";
    tr.append(cell(when), cell(imp.filename), cell(imp.status), n);
    return tr;
  });
  document.querySelector("#import-history tbody").replaceChildren(...rows);
}
history();

// Back on the page while an import started here still runs: follow it again.
const resumed = sessionStorage.getItem(`import-job-${project}`);
if (resumed) {
  api("GET", `/api/v1/projects/${project}/imports/jobs/${resumed}`).then((answer) => {
    if (["queued", "running"].includes(answer.job.state)) {
      bar.hidden = false;
      form.querySelector("button[type=submit]").disabled = true;
      showProgress(answer.job);
      follow(answer.job.id);
    } else {
      sessionStorage.removeItem(`import-job-${project}`);
    }
  }).catch(() => sessionStorage.removeItem(`import-job-${project}`));
}

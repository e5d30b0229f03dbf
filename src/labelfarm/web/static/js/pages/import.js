// Upload a file with a progress bar, then list every bad row the server reports.
const form = document.getElementById("import-form");
const bar = form.querySelector("progress.upload");
const status = form.querySelector(".status");
const table = form.querySelector(".errors-table");
const project = form.dataset.project;
const msg = form.dataset;

function upload(file, format) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const name = encodeURIComponent(file.name);
    const given = format ? `format=${encodeURIComponent(format)}&` : "";  // none: the server tells
    xhr.open("POST", `/api/v1/projects/${project}/imports?${given}filename=${name}`);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total;
    };
    xhr.upload.onload = () => { bar.removeAttribute("value"); status.textContent = msg.msgProcessing; };
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

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = form.elements.file.files[0];
  if (!file) return;
  table.hidden = true;
  bar.hidden = false;
  bar.value = 0;
  status.textContent = msg.msgUploading;
  form.querySelector("button").disabled = true;
  try {
    const { status: code, body } = await upload(file, form.elements.format.value);
    bar.value = 100;
    if (code === 201) {
      status.textContent = msg.msgDone.replace("{n}", body.n_items);
    } else {
      const err = (body && body.error) || { message: `HTTP ${code}`, details: [] };
      status.textContent = `${msg.msgFailed} ${err.message}`;
      const rows = err.details.map((d) => {
        const tr = document.createElement("tr");
        tr.append(cell(d.location), cell(d.field), cell(d.reason)); // location: line 12, cats/3.jpg
        return tr;
      });
      table.tBodies[0].replaceChildren(...rows);
      table.hidden = rows.length === 0;
    }
  } catch {
    status.textContent = msg.msgOffline;
  } finally {
    form.querySelector("button").disabled = false;
    history();
  }
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

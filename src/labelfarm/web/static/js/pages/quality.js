// The quality page: refit the annotator models, then show the new report.
import { api, ApiError, setCsrf } from "../lib/net.js";

const button = document.getElementById("refit");
const status = document.getElementById("refit-status");
setCsrf(button.dataset.csrf);

button.addEventListener("click", async () => {
  button.disabled = true;
  try {
    await api("POST", `/api/v1/projects/${button.dataset.project}/quality/refit`, undefined, { timeout: 120000 });
    status.textContent = button.dataset.msgDone;
    location.reload();
  } catch (err) {
    status.textContent = err instanceof ApiError ? err.message : button.dataset.msgOffline;
    button.disabled = false;
  }
});

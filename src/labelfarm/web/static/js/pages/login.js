// Sign in through the JSON API; the server sets the session cookie.
import { api, ApiError } from "../lib/net.js";

const form = document.getElementById("login");
const error = form.querySelector(".error");

if (new URLSearchParams(location.search).has("signed_out") && "caches" in self) {
  caches.delete("lf-pages"); // pages kept for offline use belong to the one who left
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  error.hidden = true;
  const data = new FormData(form);
  try {
    await api("POST", "/api/v1/auth/login", { username: data.get("username"), password: data.get("password") });
    location.assign(form.dataset.next || "/");
  } catch (err) {
    error.textContent = err instanceof ApiError ? form.querySelector(".error").dataset.msgFailed : error.dataset.msgOffline;
    error.hidden = false;
  }
});

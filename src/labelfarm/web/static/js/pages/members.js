// Workspace members: change a role, remove a member, add one (workspace admins).
import { api, ApiError, setCsrf } from "../lib/net.js";

const section = document.getElementById("members");
const status = section.querySelector(".status");
const base = `/api/v1/workspaces/${section.dataset.workspace}/members`;
setCsrf(section.dataset.csrf);

function fail(err) {
  status.textContent = err instanceof ApiError ? err.message : section.dataset.msgOffline;
}

section.addEventListener("change", async (e) => {
  if (!e.target.classList.contains("role")) return;
  const user = e.target.closest("tr").dataset.user;
  try {
    await api("PUT", `${base}/${user}`, { role: e.target.value });
    status.textContent = section.dataset.msgSaved;
  } catch (err) { fail(err); }
});

section.addEventListener("click", async (e) => {
  if (!e.target.classList.contains("remove")) return;
  const row = e.target.closest("tr");
  if (!confirm(section.dataset.msgConfirm)) return;
  try {
    await api("DELETE", `${base}/${row.dataset.user}`);
    row.remove();
  } catch (err) { fail(err); }
});

const add = document.getElementById("add-member");
add?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = add.elements;
  try {
    await api("POST", base, { username: f.username.value.trim(), password: f.password.value, role: f.role.value,
      display_name: f.display_name.value || null, locale: f.locale.value });
    location.reload();
  } catch (err) { fail(err); }
});

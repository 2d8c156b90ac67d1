// Shared by every page: API calls with the CSRF token, action buttons, toasts, htmx glue.
// Data from the server is only ever put into the page with textContent, never innerHTML.
"use strict";

const conveyor = (() => {
  const root = document.body.dataset.root || "";
  const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.error?.message || `${response.status} ${response.statusText}`;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  // fetch() under the UI's root path; state-changing calls carry the session's CSRF token.
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if ((options.method || "GET") !== "GET") headers["X-CSRF-Token"] = csrfToken();
    const response = await fetch(root + path, { credentials: "same-origin", ...options, headers });
    if (response.status === 401) {
      window.location.assign(`${root}/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.status === 204 ? null : response.json();
  }

  function toast(message, kind = "info") {
    const box = document.getElementById("toasts");
    if (!box) return;
    const note = document.createElement("div");
    note.className = `toast toast-${kind}`;
    note.setAttribute("role", kind === "error" ? "alert" : "status");
    note.textContent = message;
    box.append(note);
    setTimeout(() => note.remove(), kind === "error" ? 8000 : 3500);
  }

  // Tell every live panel (hx-trigger "conveyor:changed from:body") to refresh now.
  function changed() {
    if (window.htmx) window.htmx.trigger(document.body, "conveyor:changed");
  }

  return { root, api, toast, changed, csrfToken, errorMessage };
})();

// Buttons with data-post="/api/v1/...": POST (with an optional JSON data-body), then refresh.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-post]");
  if (!button) return;
  button.disabled = true;
  const body = button.dataset.body;
  try {
    await conveyor.api(button.dataset.post, {
      method: "POST",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body || undefined,
    });
    conveyor.toast(button.dataset.done || "done");
    conveyor.changed();
  } catch (error) {
    conveyor.toast(error.message, "error");
    button.disabled = false;
  }
});

document.addEventListener("click", async (event) => {
  if (!event.target.closest("button[data-logout]")) return;
  try {
    await conveyor.api("/api/v1/auth/logout", { method: "POST" });
  } finally {
    window.location.assign(`${conveyor.root}/login`);
  }
});

// GET forms marked data-drop-empty leave out empty fields (the API rejects an empty date).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-drop-empty]")) return;
  const empty = [...form.elements].filter((field) => field.name && field.value === "" && !field.disabled);
  empty.forEach((field) => { field.disabled = true; });
  setTimeout(() => empty.forEach((field) => { field.disabled = false; }), 0);
});

// Live panels are swapped whole; keep open log sections open across swaps.
let openDetails = [];
document.addEventListener("htmx:beforeSwap", (event) => {
  openDetails = [...event.detail.target.querySelectorAll("details[open][id]")].map((d) => d.id);
});
document.addEventListener("htmx:afterSettle", () => {
  openDetails.forEach((id) => document.getElementById(id)?.setAttribute("open", ""));
});
document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = conveyor.csrfToken();
});

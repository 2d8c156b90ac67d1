// The login form posts JSON to the API; the session cookie it sets is HttpOnly.
"use strict";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("login-error");
  const button = form.querySelector("button[type=submit]");
  error.hidden = true;
  button.disabled = true;
  try {
    const response = await fetch(`${document.body.dataset.root}/api/v1/auth/login`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ name: form.elements.name.value, password: form.elements.password.value }),
    });
    if (response.ok) {
      const me = await response.json();
      const next = me.must_change_password
        ? `${document.body.dataset.root}/account/password?next=${encodeURIComponent(form.dataset.next)}`
        : form.dataset.next;
      window.location.assign(next);
      return;
    }
    const body = await response.json().catch(() => ({}));
    error.textContent = body.error?.message || `login failed (${response.status})`;
  } catch (failure) {
    error.textContent = `cannot reach the server: ${failure.message}`;
  }
  error.hidden = false;
  button.disabled = false;
});

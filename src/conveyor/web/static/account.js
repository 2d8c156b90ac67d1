// Account pages: change your own password; for admins, users and API tokens through the API.
// Secrets the server generates (a password, a token) are shown once with textContent.
"use strict";

function showSecret(label, value) {
  document.getElementById("secret-label").textContent = label;
  document.getElementById("secret-value").textContent = value;
  document.getElementById("secret").hidden = false;
}

async function accountCall(path, method, body) {
  return conveyor.api(path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

const userPath = (name) => `/api/v1/users/${encodeURIComponent(name)}`;

const USER_ACTIONS = {
  disable: (name) => accountCall(userPath(name), "PATCH", { disabled: true }),
  enable: (name) => accountCall(userPath(name), "PATCH", { disabled: false }),
  logout: (name) => accountCall(`${userPath(name)}/logout`, "POST", {}),
  reset: async (name) => {
    const answer = await accountCall(`${userPath(name)}/password`, "POST", { must_change: true });
    showSecret(`New password of ${name}:`, answer.password);
    return answer;
  },
};

async function changeOwnPassword(event) {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("password-error");
  error.hidden = true;
  if (form.elements.new.value !== form.elements.again.value) {
    error.textContent = "the two new passwords differ";
    error.hidden = false;
    return;
  }
  try {
    await accountCall("/api/v1/auth/password", "POST", {
      current_password: form.elements.current.value,
      new_password: form.elements.new.value,
    });
    window.location.assign(form.dataset.next);
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
}

async function act(promise, done, reload = true) {
  try {
    await promise;
    conveyor.toast(done);
    if (reload) setTimeout(() => window.location.reload(), 1200);
  } catch (error) {
    conveyor.toast(error.message, "error");
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-user-action]");
  if (button) {
    const { userAction, name } = button.dataset;
    const reload = userAction !== "reset";
    act(USER_ACTIONS[userAction](name), `${userAction}: ${name}`, reload);
    return;
  }
  const revoke = event.target.closest("button[data-revoke]");
  if (revoke) act(accountCall(`/api/v1/tokens/${revoke.dataset.revoke}/revoke`, "POST", {}), "token revoked");
});

document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-role-of]");
  if (!select) return;
  act(accountCall(userPath(select.dataset.roleOf), "PATCH", { role: select.value }), `role: ${select.value}`);
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id === "password-form") return changeOwnPassword(event);
  if (form.id !== "new-user" && form.id !== "new-token") return;
  event.preventDefault();
  const fields = Object.fromEntries(new FormData(form).entries());
  try {
    if (form.id === "new-user") {
      const answer = await accountCall("/api/v1/users", "POST", fields);
      showSecret(`Password of ${answer.user.name}:`, answer.password);
    } else {
      if (!fields.expires_in) delete fields.expires_in;
      const answer = await accountCall("/api/v1/tokens", "POST", fields);
      showSecret(`Token ${answer.info.name} (id ${answer.info.id}):`, answer.token);
    }
    form.reset();
  } catch (error) {
    conveyor.toast(error.message, "error");
  }
});

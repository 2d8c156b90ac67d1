// Drag and drop (or choose) many files; each uploads with its own progress bar, then shows
// its item's status live until it finishes. Up to PARALLEL uploads run at once.
"use strict";

const PARALLEL = 3;
const POLL_MS = 1500;
const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const waiting = [];
let active = 0;

const dropZone = document.getElementById("drop-zone");
const fileInput = document.getElementById("files");
const pipelineSelect = document.getElementById("pipeline");

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function humanBytes(size) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// One row per file: name, size, progress bar, then a link and the item's live status.
function fileRow(file, pipeline) {
  const row = element("li", "upload");
  const head = element("div", "upload-head");
  head.append(element("span", "input-name", file.name), element("span", "muted small", `${humanBytes(file.size)} → ${pipeline}`));
  const progress = element("progress");
  progress.max = 100;
  progress.value = 0;
  const state = element("div", "upload-state small", "waiting to upload");
  row.append(head, progress, state);
  document.getElementById("uploads").prepend(row);
  document.getElementById("upload-card").hidden = false;
  return { row, progress, state };
}

function showItem(view, answer) {
  view.state.replaceChildren();
  const link = element("a", "", `item ${answer.item_id}`);
  link.href = `${conveyor.root}/items/${encodeURIComponent(answer.item_id)}`;
  const badge = element("span", "badge badge-queued", "queued");
  view.state.append(link, " ", badge);
  if (answer.duplicate) view.state.append(element("span", "muted", " already submitted: this is the earlier item"));
  view.row.dataset.item = answer.item_id;
  watchItem(answer.item_id, badge);
}

async function watchItem(itemId, badge) {
  try {
    const item = await conveyor.api(`/api/v1/items/${encodeURIComponent(itemId)}`);
    badge.textContent = item.status;
    badge.className = `badge badge-${item.status}`;
    if (FINAL.has(item.status)) return;
  } catch (error) {
    badge.title = error.message;
  }
  setTimeout(() => watchItem(itemId, badge), POLL_MS);
}

function upload(file, pipeline, view) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("pipeline", pipeline);
    form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", `${conveyor.root}/api/v1/items`);
    request.setRequestHeader("X-CSRF-Token", conveyor.csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      view.progress.value = (event.loaded / event.total) * 100;
      view.state.textContent = `uploading ${Math.round(view.progress.value)}%`;
    });
    request.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch { /* not JSON: keep the status */ }
      if (request.status === 200 || request.status === 201) {
        view.progress.value = 100;
        showItem(view, body);
      } else {
        view.row.classList.add("failed");
        view.state.textContent = body.error?.message || `upload failed: ${request.status}`;
      }
      resolve();
    });
    request.addEventListener("error", () => {
      view.row.classList.add("failed");
      view.state.textContent = "upload failed: the connection broke; try again";
      resolve();
    });
    view.state.textContent = "uploading 0%";
    request.send(form);
  });
}

function next() {
  while (active < PARALLEL && waiting.length) {
    const [file, pipeline, view] = waiting.shift();
    active += 1;
    upload(file, pipeline, view).then(() => { active -= 1; next(); });
  }
}

function enqueue(files) {
  const pipeline = pipelineSelect.value;
  for (const file of files) waiting.push([file, pipeline, fileRow(file, pipeline)]);
  next();
}

fileInput.addEventListener("change", () => { enqueue(fileInput.files); fileInput.value = ""; });
["dragenter", "dragover"].forEach((name) => dropZone.addEventListener(name, (event) => {
  event.preventDefault();
  dropZone.classList.add("over");
}));
["dragleave", "drop"].forEach((name) => dropZone.addEventListener(name, () => dropZone.classList.remove("over")));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  enqueue(event.dataTransfer.files);
});
pipelineSelect.addEventListener("change", () => {
  document.getElementById("pipeline-description").textContent =
    pipelineSelect.selectedOptions[0].dataset.description || "";
});

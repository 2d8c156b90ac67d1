// The model page's chart: one metric across versions, redrawn when another metric is chosen.
"use strict";

const MODEL_CHART_HEIGHT = 240;
let modelChart = null;

function modelChartWidth(box) {
  return Math.max(box.clientWidth, 200);
}

function drawModelChart() {
  const box = document.getElementById("model-chart");
  const node = document.getElementById("model-chart-data");
  const select = document.getElementById("chart-metric");
  if (!box || !node || !select || !window.uPlot) return;
  const data = JSON.parse(node.textContent);
  const metric = select.value;
  const series = [data.versions, data.metrics[metric] || []];
  if (modelChart) modelChart.destroy();
  const style = getComputedStyle(document.documentElement);
  const colour = style.getPropertyValue("--accent").trim() || "#2563eb";
  modelChart = new uPlot({
    width: modelChartWidth(box),
    height: MODEL_CHART_HEIGHT,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false } },
    axes: [
      { label: "version", values: (_, ticks) => ticks.map((v) => (Number.isInteger(v) ? `v${v}` : "")) },
      { label: metric, size: 60 },
    ],
    series: [{}, { label: metric, stroke: colour, width: 2, spanGaps: true, points: { show: true, size: 7 } }],
  }, series, box);
}

document.addEventListener("DOMContentLoaded", () => {
  drawModelChart();
  document.getElementById("chart-metric")?.addEventListener("change", drawModelChart);
  const box = document.getElementById("model-chart");
  if (box) new ResizeObserver(() => modelChart?.setSize({ width: modelChartWidth(box), height: MODEL_CHART_HEIGHT })).observe(box);
});
// Buttons reload the page after a change so versions and history show it.
document.body.addEventListener("conveyor:changed", () => setTimeout(() => window.location.reload(), 800));

// Batch score: post the job, then follow it (rows done, rows/s, ETA) until it ends. The job id
// goes into the address (#batch=ID), so a reload or a shared link follows the same job.
const BATCH_POLL_MS = 1000;

function batchRequest(form) {
  const data = new FormData(form);
  const list = (text, separator) => text.split(separator).map((v) => v.trim()).filter(Boolean);
  const body = { inputs: list(data.get("inputs"), "\n"), output: data.get("output").trim() };
  const columns = list(data.get("columns"), ",");
  if (columns.length) body.columns = columns;
  if (data.get("version")) body.version = Number(data.get("version"));
  body.format = data.get("format");
  if (data.get("max_rejects") !== "") body.max_rejects = Number(data.get("max_rejects"));
  return body;
}

function batchSummary(job, rate) {
  const done = job.rows_scored + job.rows_rejected;
  const parts = `${job.rows_scored.toLocaleString()} of ${job.rows_total.toLocaleString()} rows scored`;
  const rejected = job.rows_rejected ? `, ${job.rows_rejected.toLocaleString()} rejected` : "";
  if (job.status !== "running") {
    const error = job.error ? `: ${job.error}` : "";
    return `${job.status}: ${parts}${rejected} -> ${job.output}${error}`;
  }
  const left = job.rows_total - done;
  const eta = rate > 0 ? `, about ${Math.ceil(left / rate)} s left` : "";
  return `running: ${parts}${rejected} (part ${job.parts_done} of ${job.parts_total}), ${Math.round(rate).toLocaleString()} rows/s${eta}`;
}

async function followBatch(url, id) {
  const box = document.getElementById("batch-progress");
  const bar = document.getElementById("batch-bar");
  const status = document.getElementById("batch-status");
  if (!box || !bar || !status) return;
  box.hidden = false;
  let first = null;
  for (;;) {
    let job;
    try {
      job = await conveyor.api(`${url}/${encodeURIComponent(id)}`);
    } catch (error) {
      status.textContent = error.message;
      return;
    }
    const done = job.rows_scored + job.rows_rejected;
    const now = performance.now();
    first = first || { now, done };
    const rate = now > first.now ? ((done - first.done) * 1000) / (now - first.now) : 0;
    bar.max = Math.max(job.rows_total, 1);
    bar.value = done;
    status.textContent = batchSummary(job, rate);
    status.dataset.status = job.status;
    if (job.status !== "running") return;
    await new Promise((resolve) => setTimeout(resolve, BATCH_POLL_MS));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("batch-form");
  if (!form) return;
  const url = form.dataset.api;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const job = await conveyor.api(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(batchRequest(form)),
      });
      history.replaceState(null, "", `#batch=${job.id}`);
      conveyor.toast(`scoring job ${job.id} started`);
      await followBatch(url, job.id);
    } catch (error) {
      conveyor.toast(error.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  const followed = new URLSearchParams(location.hash.slice(1)).get("batch");
  if (followed) followBatch(url, followed);
});

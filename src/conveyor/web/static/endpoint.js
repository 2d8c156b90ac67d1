// The endpoint page: per-version charts of traffic, error rate and latency, and saving the
// routing config (PUT through the API with the session's CSRF token).
"use strict";

const ENDPOINT_CHART_HEIGHT = 200;
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
const endpointCharts = [];

function drawEndpointCharts() {
  if (!window.uPlot) return;
  for (const box of document.querySelectorAll(".chart[data-series]")) {
    const node = document.getElementById(box.dataset.source || "endpoint-chart-data");
    if (!node) continue;
    const data = JSON.parse(node.textContent);
    const versions = Object.keys(data.versions);
    const key = box.dataset.series;
    const series = [{}, ...versions.map((v, i) => ({
      label: `v${v}`, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false, points: { show: true, size: 4 },
    }))];
    const values = [data.times, ...versions.map((v) => data.versions[v][key])];
    endpointCharts.push(new uPlot({
      width: Math.max(box.clientWidth, 200),
      height: ENDPOINT_CHART_HEIGHT,
      cursor: { drag: { x: true, y: false } },
      axes: [{}, { size: 60 }],
      series,
    }, values, box));
  }
}

async function saveRouting() {
  const area = document.getElementById("routing-config");
  let config;
  try {
    config = JSON.parse(area.value);
  } catch (error) {
    conveyor.toast(`the routing is not valid JSON: ${error.message}`, "error");
    return;
  }
  try {
    const saved = await conveyor.api(`/api/v1/endpoints/${encodeURIComponent(area.dataset.endpoint)}/routing`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(config),
    });
    conveyor.toast(`routing saved (revision ${saved.revision})`);
    setTimeout(() => window.location.reload(), 1500);
  } catch (error) {
    conveyor.toast(error.message, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawEndpointCharts();
  document.getElementById("routing-save")?.addEventListener("click", saveRouting);
  new ResizeObserver(() => {
    for (const chart of endpointCharts) chart.setSize({ width: Math.max(chart.root.parentElement.clientWidth, 200), height: ENDPOINT_CHART_HEIGHT });
  }).observe(document.querySelector("main") || document.body);
});
document.body.addEventListener("conveyor:changed", () => setTimeout(() => window.location.reload(), 800));

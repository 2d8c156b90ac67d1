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

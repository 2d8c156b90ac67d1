// The dashboard charts (throughput, queue depth): data comes with each refresh of the live panel.
"use strict";

const CHART_HEIGHT = 220;
const CHARTS = [
  { box: "throughput-chart", key: "throughput", label: "finished", axis: "items / min", colour: "--accent" },
  { box: "queue-depth-chart", key: "queue_depth", label: "waiting or running", axis: "items", colour: "--retrying" },
];
const drawn = new Map();

function chartData() {
  const node = document.getElementById("chart-data");
  if (!node) return null;
  const data = JSON.parse(node.textContent);
  const now = Date.parse(data.generated_at) / 1000;
  const length = data.throughput.length;
  const times = data.throughput.map((_, index) => now - (length - 1 - index) * 60);
  return { times, data };
}

function chartWidth(box) {
  return Math.max(box.clientWidth, 200);
}

function newChart(spec, box, series) {
  const style = getComputedStyle(document.documentElement);
  const colour = style.getPropertyValue(spec.colour).trim() || "#2563eb";
  const chart = new uPlot({
    width: chartWidth(box),
    height: CHART_HEIGHT,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (_, min, max) => [0, Math.max(max, 4)] } },
    axes: [{}, { label: spec.axis, size: 50 }],
    series: [{}, { label: spec.label, stroke: colour, width: 2, fill: `${colour}22`, points: { show: false } }],
  }, series, box);
  new ResizeObserver(() => chart.setSize({ width: chartWidth(box), height: CHART_HEIGHT })).observe(box);
  return chart;
}

function drawCharts() {
  const found = chartData();
  if (!found || !window.uPlot) return;
  for (const spec of CHARTS) {
    const box = document.getElementById(spec.box);
    const values = found.data[spec.key];
    if (!box || !values) continue;
    const series = [found.times, values];
    if (drawn.has(spec.box)) drawn.get(spec.box).setData(series);
    else drawn.set(spec.box, newChart(spec, box, series));
  }
}

document.addEventListener("DOMContentLoaded", drawCharts);
document.addEventListener("htmx:afterSettle", drawCharts);

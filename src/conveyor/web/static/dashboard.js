// The throughput chart: data comes with each refresh of the live dashboard panel.
"use strict";

let chart = null;

function throughput() {
  const node = document.getElementById("throughput-data");
  if (!node) return null;
  const { series, generated_at: generatedAt } = JSON.parse(node.textContent);
  const now = Date.parse(generatedAt) / 1000;
  const times = series.map((_, index) => now - (series.length - 1 - index) * 60);
  return [times, series];
}

function chartWidth(box) {
  return Math.max(box.clientWidth, 200);
}

function drawChart() {
  const box = document.getElementById("throughput-chart");
  const data = throughput();
  if (!box || !data || !window.uPlot) return;
  if (chart) {
    chart.setData(data);
    return;
  }
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#2563eb";
  chart = new uPlot({
    width: chartWidth(box),
    height: 220,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { y: { range: (_, min, max) => [0, Math.max(max, 4)] } },
    axes: [{}, { label: "items / min", size: 50 }],
    series: [{}, { label: "finished", stroke: accent, width: 2, fill: `${accent}22`, points: { show: false } }],
  }, data, box);
  new ResizeObserver(() => chart.setSize({ width: chartWidth(box), height: 220 })).observe(box);
}

document.addEventListener("DOMContentLoaded", drawChart);
document.addEventListener("htmx:afterSettle", drawChart);

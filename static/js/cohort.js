/* Cohort charts. The numbers come from Python (monitoring/cohort.py) and are also in
   the tables beside each chart. */
(function () {
  "use strict";
  const el = document.getElementById("cohort-data");
  if (!el || !window.Chart) return;
  const d = JSON.parse(el.textContent);
  const colours = ["#198754", "#0d6efd", "#6f42c1", "#fd7e14", "#20c997", "#dc3545"];
  const base = { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } } };
  function bar(id, labels, values, extra) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, { type: "bar", data: { labels: labels, datasets: [{ data: values, backgroundColor: colours }] },
                        options: Object.assign({}, base, extra || {}) });
  }
  bar("chart-now", d.now.labels, d.now.values);
  bar("chart-reductions", d.reductions.labels, d.reductions.values);
  bar("chart-reasons", d.reasons.labels, d.reasons.values, { indexAxis: "y" });
  const over = document.getElementById("chart-over-time");
  if (over) {
    new Chart(over, {
      type: "bar",
      data: { labels: d.over_time.labels, datasets: d.over_time.series.map(function (s, i) {
        return { label: s.label, data: s.values, backgroundColor: colours[i % colours.length] }; }) },
      options: Object.assign({}, base, { plugins: { legend: { display: true, position: "bottom" } },
                                         scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }),
    });
  }
})();

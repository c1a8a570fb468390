/* Trend charts on the patient page. Data comes from Python (patients/trends.py) through
   json_script; this file only draws. Each chart has a table of the same data beside it. */
(function () {
  "use strict";
  const source = document.getElementById("trend-data");
  if (!source || !window.Chart) return;
  const charts = JSON.parse(source.textContent);
  const palette = ["#0d6efd", "#d63384", "#fd7e14", "#198754", "#6f42c1"];
  const fmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "2-digit" });
  if (window["chartjs-plugin-annotation"]) Chart.register(window["chartjs-plugin-annotation"]);

  charts.forEach(function (c) {
    const canvas = document.getElementById("trend-" + c.id);
    if (!canvas) return;
    const xs = c.datasets.flatMap(function (d) { return d.data.map(function (p) { return p.x; }); })
      .concat(c.bands.flatMap(function (b) { return [b.from, b.to]; }));
    const annotations = {};
    const span = Math.max.apply(null, xs) - Math.min.apply(null, xs) || 1;
    c.bands.forEach(function (b, i) {
      annotations["band" + i] = {
        type: "box", xMin: b.from, xMax: b.to, backgroundColor: b.color, borderWidth: 0, drawTime: "beforeDatasetsDraw",
        // Narrow bands (a short hold) keep their colour; their name is in the table below.
        label: { display: (b.to - b.from) / span > 0.08, content: b.label, position: { x: "start", y: "start" },
                 font: { size: 10 }, color: "#495057" },
      };
    });
    c.lines.forEach(function (l, i) {
      annotations["line" + i] = {
        type: "line", yMin: l.y, yMax: l.y, borderColor: "rgba(220,53,69,0.7)", borderDash: [6, 4], borderWidth: 1,
        label: { display: true, content: l.label, position: "end", font: { size: 10 }, backgroundColor: "rgba(255,255,255,0.8)", color: "#842029" },
      };
    });
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: c.datasets.map(function (d, i) {
          return { label: d.label, data: d.data, borderColor: palette[i % palette.length],
                   backgroundColor: palette[i % palette.length], pointStyle: ["circle", "rect", "triangle"][i % 3],
                   pointRadius: 3, tension: 0 };
        }),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: {
          x: { type: "linear", min: Math.min.apply(null, xs), max: Math.max.apply(null, xs),
               ticks: { callback: function (v) { return fmt.format(new Date(v)); }, maxTicksLimit: 8 } },
          y: { beginAtZero: true, title: { display: true, text: c.unit } },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { title: function (items) { return fmt.format(new Date(items[0].parsed.x)); } } },
          annotation: { annotations: annotations },
        },
      },
    });
  });
})();

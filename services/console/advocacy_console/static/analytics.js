// The analytics charts: Chart.js (served by the console from npm) over the figures the page embeds
// as JSON (never evaluated as script); the tables beside them carry the same numbers for screen readers.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  function bars(canvasId, dataId) {
    var canvas = document.getElementById(canvasId);
    var source = document.getElementById(dataId);
    if (!canvas || !source) { return; }
    var data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Counted clicks", data: data.clicks, backgroundColor: "#0b57d0" },
          { label: "Shares", data: data.shares, backgroundColor: "#8250df" }
        ]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }
  bars("clicks-by-day", "chart-data");
  bars("clicks-by-network", "network-chart-data");
})();

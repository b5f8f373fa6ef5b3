// The analytics chart: Chart.js (served by the console from npm) over the figures the page embeds
// as JSON (never evaluated as script); the table beside it carries the same numbers for screen readers.
(function () {
  "use strict";
  var canvas = document.getElementById("clicks-by-day");
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  if (!canvas || typeof Chart === "undefined") { return; }
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
})();

// Analytics charts (Chart.js) from the tables the server computed, and the peak-hour grid's shading.
(function () {
  "use strict";
  var source = document.getElementById("analytics-data");
  if (!source || !window.Chart) return;
  var data = JSON.parse(source.textContent);
  var common = {animation: false, maintainAspectRatio: false};

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, config);
    canvas.dataset.ready = "1";
  }

  draw("energy-chart", {
    type: "bar",
    data: {labels: data.energy.labels, datasets: [
      {label: "kWh", data: data.energy.kwh, backgroundColor: "rgba(30,142,62,.6)", yAxisID: "kwh"},
      {label: "Sessions", data: data.energy.sessions, type: "line", borderColor: "#2266cc", yAxisID: "sessions",
       pointRadius: 2}
    ]},
    options: Object.assign({}, common, {scales: {
      kwh: {position: "left", beginAtZero: true, title: {display: true, text: "kWh"}},
      sessions: {position: "right", beginAtZero: true, grid: {drawOnChartArea: false},
                 title: {display: true, text: "sessions"}}
    }})
  });
  draw("revenue-chart", {
    type: "bar",
    data: {labels: data.revenue.labels, datasets: [
      {label: "Revenue excl. VAT", data: data.revenue.excl_vat, backgroundColor: "rgba(34,102,204,.7)"}
    ]},
    options: Object.assign({}, common, {indexAxis: "y", plugins: {legend: {display: false}}})
  });

  var cells = document.querySelectorAll(".heat-cell");
  var max = 0;
  cells.forEach(function (cell) { max = Math.max(max, parseFloat(cell.dataset.value) || 0); });
  cells.forEach(function (cell) {
    var share = max ? (parseFloat(cell.dataset.value) || 0) / max : 0;
    cell.style.background = "rgba(34,102,204," + (0.08 + 0.8 * share).toFixed(2) + ")";
    if (share > 0.55) cell.style.color = "#fff";
  });
})();

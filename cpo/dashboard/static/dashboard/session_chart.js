// Power (kW) and energy delivered (kWh) over the session, with Chart.js on a linear time axis (no date adapter).
(function () {
  "use strict";
  var canvas = document.getElementById("meter-chart");
  var data = document.getElementById("series-data");
  if (!canvas || !data || !window.Chart) return;
  var series = JSON.parse(data.textContent);
  function points(rows) { return rows.map(function (r) { return {x: r[0], y: r[1]}; }); }
  function hhmm(ms) {
    var d = new Date(ms);
    return d.toISOString().slice(11, series.end_ms - series.start_ms < 600000 ? 19 : 16);
  }
  new Chart(canvas, {
    type: "line",
    data: {
      datasets: [
        {label: "Energy (kWh)", data: points(series.energy_kwh), yAxisID: "energy", borderColor: "#1e8e3e",
         backgroundColor: "rgba(30,142,62,.15)", fill: true, stepped: false, pointRadius: 2},
        {label: "Power (kW)", data: points(series.power_kw), yAxisID: "power", borderColor: "#2266cc",
         backgroundColor: "#2266cc", pointRadius: 2}
      ]
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      interaction: {mode: "nearest", intersect: false},
      scales: {
        x: {type: "linear", min: series.start_ms, max: series.end_ms, title: {display: true, text: "time (UTC)"},
           ticks: {callback: hhmm, maxTicksLimit: 12}},
        energy: {type: "linear", position: "left", beginAtZero: true, title: {display: true, text: "kWh"}},
        power: {type: "linear", position: "right", beginAtZero: true, title: {display: true, text: "kW"},
                grid: {drawOnChartArea: false}}
      },
      plugins: {tooltip: {callbacks: {title: function (items) {
        return items.length ? new Date(items[0].parsed.x).toISOString().replace("T", " ").slice(0, 19) : "";
      }}}}
    }
  });
  canvas.dataset.ready = "1";
})();

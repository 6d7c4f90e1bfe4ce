// The load page's charts (Chart.js, linear time axis, no date adapter): the group's limit as steps, the planned and
// drawn totals, and per connector planned (dashed) and drawn. Drawn again whenever the live part is re-fetched.
(function () {
  "use strict";
  if (!window.Chart) return;
  var COLORS = ["#2266cc", "#1e8e3e", "#b3261e", "#8a4fff", "#d97706", "#0e7490", "#be185d", "#4d7c0f"];
  var charts = [];

  function points(rows) { return rows.map(function (r) { return {x: r[0], y: r[1]}; }); }

  function timeAxis(data) {
    var short = data.end_ms - data.start_ms <= 3 * 3600000;
    return {type: "linear", min: data.start_ms, max: data.end_ms, title: {display: true, text: "time (UTC)"},
            ticks: {maxTicksLimit: 10, callback: function (ms) {
              var iso = new Date(ms).toISOString();
              return short ? iso.slice(11, 16) : iso.slice(5, 10) + " " + iso.slice(11, 16);
            }}};
  }

  function options(data) {
    return {
      animation: false, maintainAspectRatio: false, parsing: false, spanGaps: false,
      interaction: {mode: "nearest", intersect: false},
      scales: {x: timeAxis(data), y: {beginAtZero: true, title: {display: true, text: "A per phase"}}},
      plugins: {tooltip: {callbacks: {title: function (items) {
        return items.length ? new Date(items[0].parsed.x).toISOString().replace("T", " ").slice(0, 19) : "";
      }}}}
    };
  }

  function draw() {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var source = document.getElementById("load-history-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var total = document.getElementById("load-chart");
    if (total) {
      charts.push(new Chart(total, {type: "line", options: options(data), data: {datasets: [
        {label: "Limit", data: points(data.limit), stepped: "after", borderColor: "#b3261e", borderWidth: 2,
         pointRadius: 0},
        {label: "Planned", data: points(data.planned), stepped: "after", borderColor: "#2266cc",
         backgroundColor: "rgba(34,102,204,.12)", fill: true, pointRadius: 1},
        {label: "Drawn", data: points(data.drawn), borderColor: "#1e8e3e", pointRadius: 1}
      ]}}));
      total.dataset.ready = "1";
    }
    var each = document.getElementById("load-connectors-chart");
    if (each) {
      var datasets = [];
      data.connectors.forEach(function (c, i) {
        var color = COLORS[i % COLORS.length];
        datasets.push({label: c.label + " planned", data: points(c.planned), stepped: "after", borderColor: color,
                       borderDash: [5, 4], pointRadius: 0});
        datasets.push({label: c.label + " drawn", data: points(c.drawn), borderColor: color, pointRadius: 1});
      });
      charts.push(new Chart(each, {type: "line", options: options(data), data: {datasets: datasets}}));
      each.dataset.ready = "1";
    }
  }

  draw();
  document.addEventListener("live:updated", draw);
})();

// The load page's charts (Chart.js, linear time axis, no date adapter): the group's limit as steps, the planned and
// drawn totals, and per connector planned (dashed) and drawn. Drawn again whenever the live part is re-fetched.
(function () {
  "use strict";
  if (!window.Chart) return;
  var COLORS = ["#2266cc", "#1e8e3e", "#b3261e", "#8a4fff", "#d97706", "#0e7490", "#be185d", "#4d7c0f"];
  var charts = [];

  function points(rows) { return rows.map(function (r) { return {x: r[0], y: r[1]}; }); }

  // A value the chargers hold (the limit, what the planner gave) lasts until the next sample: drawn as steps that
  // hold each value until the next point (Chart.js `stepped: "before"`), the last one until the end of the period.
  function held(rows, end) {
    var out = points(rows);
    var last = out[out.length - 1];
    if (last && last.y !== null && last.x < end) out.push({x: end, y: last.y});
    return out;
  }

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
        {label: "Limit", data: points(data.limit), stepped: "before", borderColor: "#b3261e", borderWidth: 2,
         pointRadius: 0},
        {label: "Planned", data: held(data.planned, data.end_ms), stepped: "before", borderColor: "#2266cc",
         backgroundColor: "rgba(34,102,204,.12)", fill: true, pointRadius: 2},
        {label: "Drawn", data: points(data.drawn), borderColor: "#1e8e3e", pointRadius: 2}
      ]}}));
      total.dataset.ready = "1";
    }
    var each = document.getElementById("load-connectors-chart");
    if (each) {
      var datasets = [];
      data.connectors.forEach(function (c, i) {
        var color = COLORS[i % COLORS.length];
        datasets.push({label: c.label + " planned", data: held(c.planned, data.end_ms), stepped: "before",
                       borderColor: color, borderDash: [5, 4], pointRadius: 2});
        datasets.push({label: c.label + " drawn", data: points(c.drawn), borderColor: color, pointRadius: 2});
      });
      charts.push(new Chart(each, {type: "line", options: options(data), data: {datasets: datasets}}));
      each.dataset.ready = "1";
    }
  }

  draw();
  document.addEventListener("live:updated", draw);
})();

// Composite schedules on the station page (Chart.js, linear time axis): each EVSE's limit over time as steps (each
// period's limit held until the next period starts: `stepped: "before"`), in the unit the station answered (A or W).
(function () {
  "use strict";
  if (!window.Chart) return;
  document.querySelectorAll("canvas[data-schedule]").forEach(function (canvas) {
    var source = document.getElementById(canvas.dataset.schedule);
    if (!source) return;
    var data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "line",
      data: {datasets: [{label: "Limit (" + data.unit + ")", stepped: "before", borderColor: "#2266cc",
                         backgroundColor: "rgba(34,102,204,.12)", fill: true, pointRadius: 2,
                         data: data.points.map(function (p) { return {x: p[0], y: p[1]}; })}]},
      options: {
        animation: false, maintainAspectRatio: false, parsing: false,
        interaction: {mode: "nearest", intersect: false},
        scales: {
          x: {type: "linear", min: data.start_ms, max: data.end_ms, title: {display: true, text: "time (UTC)"},
              ticks: {maxTicksLimit: 8, callback: function (ms) { return new Date(ms).toISOString().slice(11, 16); }}},
          y: {beginAtZero: true, title: {display: true, text: data.unit}}
        },
        plugins: {legend: {display: false}, tooltip: {callbacks: {title: function (items) {
          return items.length ? new Date(items[0].parsed.x).toISOString().replace("T", " ").slice(0, 19) : "";
        }}}}
      }
    });
    canvas.dataset.ready = "1";
  });
})();

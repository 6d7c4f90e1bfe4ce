// The overview's map of locations with Leaflet. Tiles are optional (the dashboard must work offline): markers are
// circles on a plain background, fitted to the network, and recoloured when the live part of the page refreshes.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) return;
  var map = L.map(el, {attributionControl: true, zoomSnap: 0.25});
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, {maxZoom: 19, attribution: el.dataset.tilesAttribution || ""}).addTo(map);
  }
  var layer = L.layerGroup().addTo(map);
  var fitted = false;

  // Location names and cities are data staff (and partners' feeds) can edit: text nodes only, never HTML.
  function tooltip(m) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = (m.name || m.id) + " · " + m.city;
    var counts = document.createElement("div");
    counts.textContent = m.evses_available + " available, " + m.evses_charging + " charging, " +
      m.evses_faulted + " faulted of " + m.evses_total;
    box.appendChild(title);
    box.appendChild(counts);
    return box;
  }

  function draw() {
    var data = document.getElementById("markers-data");
    if (!data) return;
    var markers = JSON.parse(data.textContent);
    var points = [];
    layer.clearLayers();
    markers.forEach(function (m) {
      var colour = m.evses_faulted ? "#c0392b" : m.evses_charging ? "#2266cc" : m.evses_available ? "#1e8e3e" : "#777";
      L.circleMarker([m.latitude, m.longitude], {
        radius: 7 + Math.min(m.evses_total, 12), color: colour, fillColor: colour, fillOpacity: 0.6, weight: 2
      }).bindTooltip(tooltip(m)).addTo(layer);
      points.push([m.latitude, m.longitude]);
    });
    if (!fitted) {
      if (points.length) map.fitBounds(points, {padding: [40, 40], maxZoom: 12});
      else map.setView([52.1, 5.1], 7);
      fitted = true;
    }
    el.dataset.ready = String(points.length);
    el.dataset.colours = markers.map(function (m) {
      return m.evses_faulted ? "faulted" : m.evses_charging ? "charging" : m.evses_available ? "available" : "unknown";
    }).join(" ");
  }

  draw();
  document.addEventListener("live:updated", draw);
})();

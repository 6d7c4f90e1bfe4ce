// The overview's map of stations with Leaflet. Tiles are optional (the dashboard must work offline): without them
// the markers sit on a plain background, fitted to the network. One marker per station, clustered with
// Leaflet.markercluster: stations of one site are grouped in a numbered circle coloured by the most urgent of them
// (faulted, then charging, then available) and spread when staff zoom in or click, so no station hides another.
// Recoloured when the live part of the page refreshes.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) return;
  var map = L.map(el, {attributionControl: true, zoomSnap: 0.25, maxZoom: 19}); // clustering needs a maxZoom
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, {maxZoom: 19, attribution: el.dataset.tilesAttribution || ""}).addTo(map);
  }
  var URGENCY = ["unknown", "available", "charging", "faulted"];

  function state(m) {
    return m.evses_faulted ? "faulted" : m.evses_charging ? "charging" : m.evses_available ? "available" : "unknown";
  }

  var layer = L.markerClusterGroup
    ? L.markerClusterGroup({
        maxClusterRadius: 40,
        spiderfyOnMaxZoom: true,
        showCoverageOnHover: false,
        iconCreateFunction: function (cluster) {
          var worst = 0;
          cluster.getAllChildMarkers().forEach(function (marker) {
            worst = Math.max(worst, URGENCY.indexOf(marker.options.state));
          });
          var count = cluster.getChildCount();
          return L.divIcon({
            html: "<span>" + count + "</span>",
            className: "map-cluster map-" + URGENCY[worst],
            iconSize: L.point(34, 34),
          });
        },
      })
    : L.layerGroup();
  var fitted = false;

  // Station identities, location names and cities are data staff and partners' feeds can edit: text nodes only.
  function tooltip(m) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = m.identity + (m.online ? "" : " (offline)");
    var where = document.createElement("div");
    where.textContent = (m.location_name || "") + (m.city ? " · " + m.city : "");
    var counts = document.createElement("div");
    counts.textContent = m.evses_available + " available, " + m.evses_charging + " charging, " +
      m.evses_faulted + " faulted of " + m.evses_total;
    box.appendChild(title);
    box.appendChild(where);
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
      var s = state(m);
      var marker = L.marker([m.latitude, m.longitude], {
        state: s,
        title: m.identity,
        icon: L.divIcon({className: "map-station map-" + s + (m.online ? "" : " map-offline"), iconSize: L.point(16, 16)}),
      }).bindTooltip(tooltip(m));
      marker.on("click", function () {
        window.location.href = el.dataset.stationUrl.replace("IDENTITY", encodeURIComponent(m.identity));
      });
      layer.addLayer(marker);
      points.push([m.latitude, m.longitude]);
    });
    if (!fitted) {
      if (points.length) map.fitBounds(points, {padding: [40, 40], maxZoom: 12});
      else map.setView([52.1, 5.1], 7);
      fitted = true;
      layer.addTo(map); // after the view is set: the cluster layer needs the map's zoom
    }
    el.dataset.ready = String(points.length);
    el.dataset.colours = markers.map(state).join(" ");
  }

  draw();
  document.addEventListener("live:updated", draw);
})();

// Live updates: one websocket per page to /ws/dashboard/. When an event arrives, every element with
// data-live-url that it concerns is re-fetched from the server (debounced), so the page shows what the database says.
(function () {
  "use strict";
  var state = document.getElementById("live-state");
  var pending = new Map();
  var retry = 1000;

  function setState(text, cls) {
    if (!state) return;
    state.textContent = text;
    state.className = "live-state " + cls;
  }

  function concerns(el, event) {
    var kinds = el.dataset.liveKinds;
    if (kinds && kinds.split(" ").indexOf(event.kind) < 0) return false;
    var station = el.dataset.liveStation;
    if (station && station !== event.station) return false;
    var group = el.dataset.liveLoadGroup;  // a load group's page: only its own samples
    if (group && event.kind === "load" && String(event.load_group) !== group) return false;
    return true;
  }

  function refresh(el) {
    if (pending.has(el)) return;
    pending.set(el, setTimeout(function () {
      pending.delete(el);
      fetch(el.dataset.liveUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          // Only what changed is replaced: the catch-up after every (re)connect re-fetches the whole page's live
          // parts, and replacing an unchanged table under the pointer swallowed a click on it (a sort link).
          var fresh = document.createElement("template");
          fresh.innerHTML = html;
          if (fresh.innerHTML.trim() === el.innerHTML.trim()) return;
          el.innerHTML = html;
          el.dispatchEvent(new CustomEvent("live:updated", {bubbles: true}));
        })
        .catch(function () { setState("● stale", "bad"); });
    }, 150));
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/ws/dashboard/");
    ws.onopen = function () {
      retry = 1000;
      setState("● live", "ok");
      // Catch up on anything missed while the socket was down.
      document.querySelectorAll("[data-live-url]").forEach(refresh);
    };
    ws.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      document.querySelectorAll("[data-live-url]").forEach(function (el) {
        if (concerns(el, event)) refresh(el);
      });
    };
    ws.onclose = function () {
      setState("○ reconnecting", "bad");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  if ("WebSocket" in window) connect();
})();

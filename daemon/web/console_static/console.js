// depotwatch console: keeps the alarm list, an alarm's lifecycle block and audit trail, the
// storehouses and the silences current by polling
// the console's JSON every few seconds (cookie session; read-only, so no CSRF token needed).
"use strict";
(function () {
  var POLL_MS = 3000;

  function poll(element, apply) {
    var url = element.getAttribute("data-poll");
    function once() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) { window.location.assign("/console/login"); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (body) { if (body) { apply(body); } })
        .catch(function () { /* the gateway may be restarting: try again next round */ })
        .finally(function () { window.setTimeout(once, POLL_MS); });
    }
    window.setTimeout(once, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector("table.alarms[data-poll]");
    if (list) {
      poll(list, function (body) {
        document.getElementById("alarm-rows").innerHTML = body.rows;
        document.title = (body.open ? "(" + body.open + ") " : "") + "Alarms - depotwatch";
      });
    }
    var alarm = document.querySelector("#alarm[data-poll]");
    if (alarm) {
      poll(alarm, function (body) {
        alarm.innerHTML = body.html;
        var audit = document.getElementById("audit");
        if (audit && body.audit) { audit.innerHTML = body.audit; }
      });
    }
    // Storehouse cards and the silence list: the server renders, the page swaps the block in
    // (not while a silence button has focus, so a tap is never lost to a redraw).
    ["#storehouses[data-poll]", "#silences[data-poll]"].forEach(function (selector) {
      var block = document.querySelector(selector);
      if (block) {
        poll(block, function (body) {
          if (!block.contains(document.activeElement)) { block.innerHTML = body.html; }
        });
      }
    });
  });
})();

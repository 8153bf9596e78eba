// depotwatch console: keeps the alarm queue, an alarm's lifecycle block and audit trail, the
// storehouses and the silences current by polling the console's JSON every few seconds
// (cookie session; read-only, so no CSRF token needed), and every "4 min ago" counting.
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
        .then(function (body) { if (body) { apply(body); tick(); } })
        .catch(function () { /* the gateway may be restarting: try again next round */ })
        .finally(function () { window.setTimeout(once, POLL_MS); });
    }
    window.setTimeout(once, POLL_MS);
  }

  // The server wrote each "ago" for the moment it rendered; the page keeps it true.
  function ago(ms) {
    var minutes = Math.floor(Math.max(0, Date.now() - ms) / 60000);
    if (minutes < 1) { return "just now"; }
    if (minutes < 60) { return minutes + " min ago"; }
    var hours = Math.floor(minutes / 60), rest = minutes % 60;
    if (hours < 48) { return hours + " h" + (rest ? " " + rest + " min" : "") + " ago"; }
    return Math.floor(hours / 24) + " days ago";
  }
  function tick() {
    document.querySelectorAll("[data-since-ms]").forEach(function (span) {
      span.textContent = ago(Number(span.getAttribute("data-since-ms")));
    });
  }

  // Swap a server-rendered block in, but never under the officer's finger.
  function swap(block, html) {
    if (!block.contains(document.activeElement)) { block.innerHTML = html; }
  }

  // The header's theme button names the theme it turns to (theme.js keeps the choice).
  function themeButton() {
    var button = document.getElementById("theme-toggle");
    if (!button || !window.depotwatchTheme) { return; }
    function label() {
      var dark = document.documentElement.getAttribute("data-theme") === "dark";
      button.textContent = dark ? "Light" : "Dark";
      button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
    }
    button.addEventListener("click", function () { window.depotwatchTheme.toggle(); label(); });
    window.setInterval(function () { window.depotwatchTheme.apply(); label(); }, 60000);
    label();
  }

  document.addEventListener("DOMContentLoaded", function () {
    themeButton();
    window.setInterval(tick, 15000);
    var list = document.querySelector("#alarm-rows[data-poll]");
    if (list) {
      poll(list, function (body) {
        swap(list, body.rows);
        document.dispatchEvent(new CustomEvent("depotwatch:queue", { detail: body.rows }));
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
    ["#storehouses[data-poll]", "#silences[data-poll]"].forEach(function (selector) {
      var block = document.querySelector(selector);
      if (block) { poll(block, function (body) { swap(block, body.html); }); }
    });
  });
})();

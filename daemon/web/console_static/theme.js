// depotwatch console: the theme before the first paint (loaded in <head>, not deferred).
// Dark in the depot's dark spells (data-nights, "start-end" in ms, from the gateway's sunset
// and sunrise) or by the browser's prefers-color-scheme; an officer's own choice wins for 12 h.
"use strict";
(function () {
  var KEY = "depotwatch.theme", HOLD_MS = 12 * 3600 * 1000;
  var root = document.documentElement;

  function chosen() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(KEY) || "null");
      return saved && Date.now() - saved.at < HOLD_MS ? saved.theme : "";
    } catch (e) { return ""; }
  }
  function night() {
    var now = Date.now();
    return (root.getAttribute("data-nights") || "").split(" ").some(function (spell) {
      var ends = spell.split("-").map(Number);
      return ends.length === 2 && ends[0] <= now && now < ends[1];
    });
  }
  function automatic() {
    if (night()) { return "dark"; }
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function apply() { root.setAttribute("data-theme", chosen() || automatic()); }
  // The header's button: the other theme; choosing what dusk would give anyway goes back to it.
  function toggle() {
    var next = root.getAttribute("data-theme") === "dark" ? "light" : "dark";
    try {
      if (next === automatic()) { window.localStorage.removeItem(KEY); }
      else { window.localStorage.setItem(KEY, JSON.stringify({ theme: next, at: Date.now() })); }
    } catch (e) { /* private mode: the choice lasts this page */ }
    root.setAttribute("data-theme", next);
  }
  apply();
  window.depotwatchTheme = { apply: apply, toggle: toggle };
})();

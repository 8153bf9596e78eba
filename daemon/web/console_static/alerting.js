// depotwatch console: a new critical alarm sounds, vibrates and shows a browser notification
// while a console tab is open, once the officer has allowed it with the bar's button (issue 30).
// Browsers play sound and vibrate only after a tap on the page: the button is that tap, and
// after a page change any tap on the page turns the sound back on. Web Push (alarms with no
// console tab open) is not done: it needs VAPID keys and a push service the browser reaches.
"use strict";
(function () {
  var WANTED = "depotwatch.alerting", SEEN = "depotwatch.critical-seen", POLL_MS = 3000;
  var bar, button, state, audio = null;

  function wanted() {
    try { return window.localStorage.getItem(WANTED) === "on"; } catch (e) { return false; }
  }
  function seen() {
    try { return JSON.parse(window.sessionStorage.getItem(SEEN) || "[]"); } catch (e) { return []; }
  }
  function remember(keys) {
    try { window.sessionStorage.setItem(SEEN, JSON.stringify(keys.slice(-200))); } catch (e) { /* private mode */ }
  }
  function notifying() { return "Notification" in window && Notification.permission === "granted"; }
  function sounding() { return audio !== null && audio.state === "running"; }

  // The bar says what the officer will get; the button shows while something is still off.
  function describe() {
    bar.hidden = false;
    if (!wanted()) {
      button.hidden = false;
      state.textContent = "";
      return;
    }
    var words = [sounding() ? "sound on" : "sound off until you tap the page"];
    if (!("Notification" in window)) { words.push("this browser shows no notifications"); }
    else if (Notification.permission === "denied") { words.push("notifications blocked in the browser's site settings"); }
    else { words.push(notifying() ? "notifications on" : "notifications not yet allowed"); }
    button.textContent = "Turn alarm sound on";
    button.hidden = sounding() && (notifying() || !("Notification" in window) || Notification.permission === "denied");
    state.textContent = "New critical alarms: " + words.join(", ") + ".";
  }

  function unlock() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (audio === null && Context) { audio = new Context(); }
    if (audio !== null && audio.state === "suspended") { audio.resume().then(describe, describe); }
  }

  // Three short tones, loud enough to wake; no file to fetch.
  function tones() {
    if (!sounding()) { return; }
    var start = audio.currentTime;
    [[880, 0], [660, 0.3], [880, 0.6], [660, 0.9]].forEach(function (tone) {
      var oscillator = audio.createOscillator(), gain = audio.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = tone[0];
      gain.gain.value = 0.2;
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(start + tone[1]);
      oscillator.stop(start + tone[1] + 0.22);
    });
  }

  function raise(alarm) {
    tones();
    if (navigator.vibrate) { navigator.vibrate([300, 100, 300, 100, 300]); }
    if (notifying()) {
      var note = new Notification("Critical alarm", { body: alarm.headline, tag: alarm.key,
                                                       requireInteraction: true });
      note.onclick = function () { window.focus(); window.location.assign(alarm.href); note.close(); };
    }
  }

  // Unacknowledged critical alarms in a queue's HTML; those not met before in this tab raise.
  function check(queue) {
    var known = seen(), fresh = [];
    queue.querySelectorAll("article.alarm.sev-critical.group-firing[data-key]").forEach(function (card) {
      var key = card.getAttribute("data-key"), link = card.querySelector("h3 a");
      if (known.indexOf(key) < 0 && link) {
        fresh.push({ key: key, headline: link.textContent.trim(), href: link.getAttribute("href") });
        known.push(key);
      }
    });
    remember(known);
    if (wanted()) { fresh.forEach(raise); }
  }
  function checkHtml(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    check(holder.content);
  }

  // Pages other than the queue ask for it themselves while the officer wants to hear alarms.
  function poll() {
    window.setTimeout(function () {
      if (!wanted()) { poll(); return; }
      fetch("/console/alerts.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) { if (body) { checkHtml(body.rows); } })
        .catch(function () { /* the gateway may be restarting */ })
        .finally(poll);
    }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    bar = document.getElementById("alerting");
    if (!bar) { return; }  // not logged in
    button = document.getElementById("alerting-on");
    state = document.getElementById("alerting-state");
    button.addEventListener("click", function () {
      try { window.localStorage.setItem(WANTED, "on"); } catch (e) { /* private mode */ }
      unlock();
      if ("Notification" in window && Notification.permission === "default") {
        Notification.requestPermission().then(describe, describe);
      }
      describe();
    });
    ["pointerdown", "keydown"].forEach(function (kind) {
      document.addEventListener(kind, function () { if (wanted()) { unlock(); } }, true);
    });
    if (wanted()) { unlock(); }  // allowed where the browser remembers a tap on this site
    describe();
    var queue = document.getElementById("alarm-rows");
    if (queue) {
      check(queue);
      document.addEventListener("depotwatch:queue", function (event) { checkHtml(event.detail); });
    } else {
      poll();
    }
  });
})();

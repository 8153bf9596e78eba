// HQ's page: every value goes in through textContent, never as HTML.
"use strict";
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("hq-token") || "";

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method, headers: {"Authorization": "Bearer " + tokenInput.value,
                      "Content-Type": "application/json"},
    body: body ? JSON.stringify(body) : undefined});
  const doc = await response.json();
  if (!response.ok) throw new Error(doc.error || response.statusText);
  return doc;
}

async function acknowledge(site, key) {
  const note = prompt("Note for the acknowledgement at " + site + " (optional)") || "";
  try {
    await call("POST", "api/depots/" + encodeURIComponent(site) + "/alarms/" +
               encodeURIComponent(key) + "/ack", {note});
  } catch (error) {
    alert("Not acknowledged: " + error.message);
  }
  refresh();
}

async function refresh() {
  const status = document.getElementById("status");
  let doc;
  try {
    doc = await call("GET", "api/depots");
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  status.textContent = "as of " + new Date().toLocaleTimeString();
  const depots = document.querySelector("#depots tbody");
  const alarms = document.querySelector("#alarms tbody");
  depots.replaceChildren();
  alarms.replaceChildren();
  for (const depot of doc.depots) {
    const row = depots.insertRow();
    row.className = depot.reachable ? "ok" : "dark";
    cell(row, depot.name + " (" + depot.site + ")");
    cell(row, depot.reachable ? "yes" : "NO: " + depot.unreachable_since);
    cell(row, when(depot.last_heartbeat_s));
    cell(row, depot.open_alarms);
    cell(row, depot.unacknowledged_alarms);
    cell(row, depot.late_alarms);
    cell(row, depot.heartbeat ? depot.heartbeat.spool_points : null);
    for (const alarm of depot.alarms) {
      const line = alarms.insertRow();
      cell(line, depot.name);
      cell(line, alarm.severity, alarm.severity);
      cell(line, alarm.summary);
      cell(line, when(alarm.started_s));
      cell(line, alarm.lifecycle);
      cell(line, alarm.acked_by);
      const action = cell(line, "");
      if (!alarm.acked_by && depot.can_acknowledge) {
        const button = document.createElement("button");
        button.textContent = "Acknowledge";
        button.addEventListener("click", () => acknowledge(depot.site, alarm.key));
        action.appendChild(button);
      }
    }
  }
}

document.getElementById("who").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("hq-token", tokenInput.value);
  refresh();
});
if (tokenInput.value) refresh();
setInterval(() => { if (tokenInput.value) refresh(); }, 5000);

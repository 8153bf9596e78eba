"""Depot benchmark (issue 9): readings/s, CPU per reading, memory and alarm latency.

One private Mosquitto, VictoriaMetrics and InfluxDB 1.6.7 (``tests/servers.py``; Mosquitto with
its per-packet logging turned down, as in ``mqtt_clients.py``). The same depot traffic
(``depot_mix.py``: door contacts, climate, badge events, RFID portal bursts) is published by a
separate publisher process that writes pre-encoded MQTT 3.1.1 packets straight to a socket and,
at QoS 1, counts the broker's PUBACKs (``mosquitto_pub -l`` cannot wait for them). In every
round, on the same broker and the same messages:

1. ``bare gmqtt``: gmqtt as its users write it (persistent MQTT 5 session, an ``on_message``
   callback, PUBACK after the handler) receiving and discarding: the baseline the targets name;
   and ``depotwatch's MQTT link`` (``drivers.mqtt.MqttLink``: gmqtt whose PUBLISH packets
   ``PublishReader`` reads, PUBACKs one write per commit) discarding, to show what the daemon's
   own work costs on top of its receive path;
2. ``depotwatch``: ``depotwatch run -c FILE`` as a subprocess with every rule kind at its
   defaults (``sensor_silent`` with 1 h limits: the mix's sensors report only during runs),
   the durable spool and two writers (InfluxDB 1.6.7 via /write, VictoriaMetrics via
   /api/v2/write). A run's messages are taken when the alarm raised by its last two messages
   (an unknown tag leaving) arrives on MQTT (at QoS 1 each one spooled before its PUBACK); they
   are in the database when InfluxDB holds every point the run should have written, and
   VictoriaMetrics must hold them all too; variants: 100 and 2,000 sensors, fsync on and off;
3. ``node-red``: Node-RED 4 with ``mqtt in -> json -> function -> influxdb out``
   (node-red-contrib-influxdb) writing to the same InfluxDB, when ``make bench`` could install
   it into ``bench/.node-red``.

readings/s = messages / (first publish .. end): the last message handled (bare client), the
run's end alarm (depotwatch), all points in InfluxDB (depotwatch ``to DB``; Node-RED: the
points it stored, once InfluxDB's count stops moving).
CPU µs per reading: the receiver process's user+system CPU over the run (to DB) / messages.

Then the alarm latency: background traffic paced at 5,000 readings/s into the 100-sensor
daemon while a probe raises alarms (an unknown tag leaving through a portal, a new key each),
timing publish -> alert on ``depotwatch/<site>/alerts/<key>`` and -> the webhook.

``make bench`` runs it; results go to ``bench/results/depot-<date>.json`` and ``.md``. This module
is the command line and the run's outline; the rig, the load, the baselines, the daemon under
test, the Node-RED peer, the two phases and the report have a module each (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import depot_report
from depot_baselines import role_baseline
from depot_latency import every_alarm_arrived, run_latency
from depot_load import role_pace, role_probe, role_publish
from depot_rig import Rig
from depot_saturation import Runs, attempt, run_rounds


def main_bench(args: argparse.Namespace) -> None:
    """Servers, receivers, rounds of runs, latency; JSON and markdown out."""
    started = time.monotonic()
    # SIGTERM (a timeout, Ctrl-C from make) still stops the servers and daemons in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="depotwatch-bench-"))
    rig = Rig(args, workdir)
    runs: Runs = {}
    latency: dict[str, Any] | None = None
    try:
        rig.start()
        runs = run_rounds(args, rig)
        if args.latency_s > 0:
            latency = attempt(run_latency, rig.daemons["dw100"], rig.broker.port, rig.webhook,
                              args.latency_rate, args.latency_s, args.alarms_per_s)
            print(f"latency: {json.dumps(latency)}", file=sys.stderr, flush=True)
    finally:
        codes = rig.close()
    for name, code in codes.items():
        if code not in (0, None):
            print(f"warning: daemon {name} exited {code}:\n{rig.daemons[name].log_tail()}",
                  file=sys.stderr)
    doc = depot_report.document(args, runs, latency, rig.peer_note, started)
    stem = depot_report.write(doc, args.output)
    print()
    print(depot_report.markdown(doc))
    print(f"wrote {stem.with_suffix('.json')} and .md ({doc['total_s']:.0f} s)")
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    failure = every_alarm_arrived(latency)
    if failure is not None:
        sys.exit(f"depot bench failed: {failure}")


def main(argv: list[str] | None = None) -> None:
    """CLI: the benchmark, or (internally) one publisher, subscriber or probe process."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        p = argparse.ArgumentParser(prog=f"depot.py {argv[0]}")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--prefix", default="")
        p.add_argument("--sensors", type=int, default=100)
        p.add_argument("--messages", type=int, default=30000)
        p.add_argument("--qos", type=int, default=1)
        p.add_argument("--site", default="")
        p.add_argument("--client-id", default="bare")
        p.add_argument("--link", action="store_true", help="_baseline: the daemon's MqttLink")
        p.add_argument("--rate", type=int, default=5000)
        p.add_argument("--seconds", type=float, default=20.0)
        p.add_argument("--alarms", type=int, default=200)
        p.add_argument("--alarms-per-s", type=float, default=10.0)
        roles = {"_publish": role_publish, "_pace": role_pace, "_baseline": role_baseline,
                 "_probe": role_probe}
        roles[argv[0]](p.parse_args(argv[1:]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="rounds; median/min/max reported (5)")
    p.add_argument("--messages", type=int, default=30000, help="messages per run (30000)")
    p.add_argument("--sensors", type=int, default=100, help="sensors of the main depot (100)")
    p.add_argument("--big-sensors", type=int, default=2000, help="the large depot (2000)")
    p.add_argument("--qos", default="0,1", help="QoS levels for bare and depotwatch (0,1)")
    p.add_argument("--peer-qos", default="1", help="QoS levels for Node-RED (1)",
                   type=lambda s: [int(q) for q in s.split(",") if q])
    p.add_argument("--peer-messages", type=int, default=30000,
                   help="messages per Node-RED run (30000, as for the others)")
    p.add_argument("--no-peer", dest="peer", action="store_false", help="skip Node-RED")
    p.add_argument("--latency-s", type=float, default=30.0, help="latency phase length (30)")
    p.add_argument("--latency-rate", type=int, default=5000, help="background readings/s")
    p.add_argument("--alarms-per-s", type=float, default=10.0, help="alarm changes per s")
    p.add_argument("--keep", action="store_true", help="keep the servers' and daemons' dirs")
    p.add_argument("--output", help="path stem for .json and .md (results/depot-<date>)")
    main_bench(p.parse_args(argv))


if __name__ == "__main__":
    main()

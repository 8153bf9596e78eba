"""What one depot bench run starts: Mosquitto, InfluxDB 1.6.7, VictoriaMetrics, the webhook
receiver, the three depotwatch variants and (when installed) Node-RED; and how it stops them."""

from __future__ import annotations

import argparse
from pathlib import Path

from depot_daemon import DaemonTarget
from depot_latency import WebhookReceiver
from depot_nodered import NodeRedTarget
from harness import start_broker
from servers import InfluxDB1, VictoriaMetrics

NODE_RED_STOP_S = 20.0


class Rig:
    """The servers and receivers of one run of bench/depot.py."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = start_broker()
        self.influx, self.vm = InfluxDB1(workdir / "influxdb1"), VictoriaMetrics(workdir / "vm")
        self.influx.start()
        self.vm.start()
        self.webhook = WebhookReceiver()
        port, big = self.broker.port, args.big_sensors
        self.daemons = {
            "dw100": DaemonTarget("dw100", args.sensors, True, port, self.influx, self.vm,
                                  workdir, self.webhook.url),
            "dw2000": DaemonTarget(f"dw{big}", big, True, port, self.influx, self.vm, workdir),
            "nofsync": DaemonTarget("nofsync", args.sensors, False, port, self.influx, self.vm,
                                    workdir),
        }
        self.peer_note = None if args.peer else "skipped (--no-peer)"
        self.peer_note = self.peer_note or NodeRedTarget.available()
        self.peer: NodeRedTarget | None = None

    def start(self) -> None:
        """Start the daemons, and Node-RED unless it is skipped or missing (then say why)."""
        for d in self.daemons.values():
            d.start()
        if self.peer_note is None:
            self.peer = NodeRedTarget(self.broker.port, self.influx, self.workdir)
            try:
                self.peer.start()
            except RuntimeError as exc:
                self.peer_note = f"could not run: {exc}"
                self.peer.stop(NODE_RED_STOP_S)
                self.peer = None

    def close(self) -> dict[str, int | None]:
        """Stop every receiver and server; the daemons' exit codes."""
        if self.peer is not None:
            self.peer.stop(NODE_RED_STOP_S)
        codes = {name: d.stop() for name, d in self.daemons.items()}
        self.webhook.close()
        self.vm.close()
        self.influx.close()
        self.broker.close()
        return codes

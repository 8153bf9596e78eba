"""The Grafana HQ overview (dashboards/hq-overview.json): Grafana's schema, the committed JSON
is what `depotwatch dashboards render --hq` writes, and every panel's query answers rows from
InfluxDB 1.6 holding two depots' points as their gateways write them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from grafana_schema import schema_problems
from servers import InfluxDB1

from daemon.cli.main import main
from daemon.dashboards.hq import hq_overview
from daemon.tsdb.lineprotocol import line

REPO = Path(__file__).resolve().parent.parent
DB = "hq_overview"


def test_committed_hq_dashboard_is_rendered_and_follows_the_schema(
        tmp_path: Path) -> None:
    out = tmp_path / "hq.json"
    assert main(["dashboards", "render", "--hq", "-o", str(out)]) == 0
    committed = json.loads((REPO / "dashboards" / "hq-overview.json").read_text())
    assert committed == json.loads(out.read_text()) == hq_overview()
    assert schema_problems(hq_overview()) == []


def _two_depots(now_ns: int) -> str:
    lines = []
    for n, site in enumerate(("depot-north", "depot-south")):
        at = now_ns - (n + 1) * 60 * 10**9
        for component, values in (
                ("spool", {"fill_pct": 1.5, "lag_s": 0.2, "spool_points": 3.0}),
                ("mqtt", {"up": True}), ("ups", {"on_battery": n == 1, "charge_pct": 80.0}),
                ("clock", {"synchronised": True}), ("disk", {"free_pct": 40.0}),
                ("cpu", {"temperature_c": 55.0})):
            lines.append(line("gateway", {"site": site, "component": component}, values, at))
        lines.append(line("climate", {"site": site, "storehouse": "SH1", "sensor": "c1"},
                          {"temperature_c": 21.0 + n, "humidity_pct": 55.0}, at))
        lines.append(line("alert", {"site": site, "rule": "door_armed", "severity": "critical",
                                    "state": "firing", "storehouse": "SH1", "subject": "D1"},
                          {"key": "door_armed.D1", "summary": "door opened while armed"}, at))
    return "\n".join(lines) + "\n"


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{p['title']}/{t['refId']}", t["query"]) for p in dashboard["panels"]
            for t in p.get("targets", [])]


@pytest.mark.parametrize(("name", "query"), _targets(hq_overview()))
def test_every_hq_query_answers_rows(name: str, query: str, influxdb1: InfluxDB1) -> None:
    influxdb1.create_database(DB)
    influxdb1.write(DB, _two_depots(time.time_ns()))
    sql = query.replace("$site", "depot-north|depot-south").replace(
        "$timeFilter", "time > now() - 1h")
    series = influxdb1.query(DB, sql)["results"][0].get("series", [])
    sites = {s.get("tags", {}).get("site") for s in series}
    assert sites == {"depot-north", "depot-south"}, f"{name}: {sql} -> {series}"

"""Loss and theft reports (issue 27): when an item is marked lost, or a count finds it missing,
everything the gateway knows about it goes into one signed file in `state_dir/losses/`, and an
alarm carrying its summary goes to the officers through the notifiers (rule `item_state`).

What it holds: the item and its consignment, its steps on the book (who, approved by whom, on
which document), where and when it was last read, its portal passages, who held the keys of its
storehouse and who badged in there from the last read to now, and the alarms raised in that
window, with the audit chain's head it was made from. InfluxDB unreachable is said in `gaps`
and the rest is kept: a report with holes now beats a complete one never.

The gathering runs on a worker thread, the signing in a short-lived child process (as the daily
digest: `cryptography` is not kept in the daemon's memory); neither touches the event loop, so
no alarm waits for a report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.alerts.audit_reading import export
from daemon.book.desk import RecordsDesk
from daemon.book.entries import KINDS, Records
from daemon.book.store import Change
from daemon.config.schema import Config
from daemon.records.influxql import InfluxQL, quote
from daemon.vocabulary.errors import DepotwatchError
from rules.depot import Item

__all__ = ["LOSSES_DIR", "LossReports", "gather", "summary"]

log = logging.getLogger(__name__)

LOSSES_DIR = "losses"
_NS = 1_000_000_000
# Passages looked back on, and how far back the window goes when the item was never read.
_LOOK_BACK_NS = 30 * 86400 * _NS
# A count finding the same item missing again within this time makes no second report.
_REPEAT_NS = 7 * 86400 * _NS

LastRead = Callable[[str], tuple[int, str] | None]


def _iso(ns: int | None) -> str | None:
    return None if ns is None else dt.datetime.fromtimestamp(ns / _NS, dt.UTC).isoformat()


def _influx(config: Config, item: Item, since_ns: int, now_ns: int,
            gaps: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The item's portal passages and the granted badges at its storehouse's doors."""
    if not config.influxdb:
        gaps.append("no InfluxDB target: passages and badges unknown")
        return [], []
    db, site = InfluxQL(config.influxdb[0]), quote(config.site.id)
    doors = {d.id for d in config.doors if d.storehouse == item.storehouse}
    try:
        passages = [{"at": _iso(int(row["time"])), "portal": tags.get("portal", ""),
                     "direction": tags.get("direction", ""), "order": row.get("order") or ""}
                    for tags, row in db.rows(
                        f'SELECT "epc", "order" FROM "portal" WHERE "site" = {site} AND '
                        f'"epc" = {quote(item.epc)} AND time >= {now_ns - _LOOK_BACK_NS} AND '
                        f'time <= {now_ns} GROUP BY "portal", "direction"')]
        badges = [{"at": _iso(int(row["time"])), "door": tags.get("door", ""),
                   "person": row.get("person") or ""}
                  for tags, row in db.rows(
                      f'SELECT "person" FROM "access" WHERE "site" = {site} AND "result" = '
                      f"'granted' AND time >= {since_ns} AND time <= {now_ns} GROUP BY \"door\"")
                  if tags.get("door", "") in doors]
    except DepotwatchError as exc:
        gaps.append(f"InfluxDB not read: {exc}")
        return [], []
    return (sorted(passages, key=lambda p: str(p["at"])),
            sorted(badges, key=lambda b: str(b["at"])))


def _alarms(audit: Path, store_name: str, epc: str, since_ns: int,
            gaps: list[str]) -> tuple[list[dict[str, Any]], tuple[int, str] | None]:
    """Alarms raised in the window at the item's storehouse or about it; the chain's head."""
    found, head = [], None
    if not audit.exists():
        gaps.append("no audit log")
        return [], None
    for entry in export(audit, 0):
        head = (int(entry["seq"]), str(entry["hash"]))
        if entry["action"] != "raised" or entry["at_ns"] < since_ns:
            continue
        text = str(entry["details"].get("summary", ""))
        if text.startswith(f"{store_name}:") or epc in entry["subject"]:
            found.append({"at": _iso(int(entry["at_ns"])), "key": entry["subject"],
                          "summary": text, "seq": entry["seq"]})
    return found, head


def gather(config: Config, history: Sequence[Change], records: Records, epc: str, cause: str,
           actor: str, last: tuple[int, str] | None, now_ns: int) -> dict[str, Any]:
    """Everything known about a lost or missing item, as the report's JSON document
    (`history`: the book's lifecycle changes)."""
    item = records.items[epc]
    place = next((s for s in config.storehouses if s.id == item.storehouse), None)
    store_name = place.name or place.id if place is not None else item.storehouse
    steps = [{**(c.after or {}), "by": c.actor, "approved_by": c.approved_by}
             for c in history if (c.after or {}).get("epc") == epc]
    since = last[0] if last is not None else now_ns - _LOOK_BACK_NS
    gaps: list[str] = []
    passages, badges = _influx(config, item, since, now_ns, gaps)
    alarms, head = _alarms(config.state_dir / "audit.jsonl", store_name, epc, since, gaps)
    keys = [{"key": k.epc, "person": k.person, "issued": _iso(k.issued_ns),
             "returned": _iso(k.returned_ns)}
            for k in records.key_issues.values()
            if (k.returned_ns or now_ns) >= since and k.issued_ns <= now_ns
            and getattr(records.items.get(k.epc), "storehouse", None) == item.storehouse]
    consignment = next(({"id": c.id, "reference": c.reference, "serial": dict(c.serials)[epc],
                         "exporting_state": c.exporting_state}
                        for c in records.consignments.values() if epc in dict(c.serials)), None)
    return {"kind": "loss_report", "site": config.site.id, "made_at": _iso(now_ns),
            "cause": cause, "reported_by": actor, "item": KINDS["items"].public(item),
            "storehouse": store_name, "consignment": consignment, "steps": steps,
            "last_seen": None if last is None else {"at": _iso(last[0]), "sensor": last[1]},
            "window": {"from": _iso(since), "to": _iso(now_ns)}, "passages": passages,
            "keys_held": keys, "badged_in": badges, "alarms": alarms, "gaps": gaps,
            "audit_head": None if head is None else {"seq": head[0], "hash": head[1]}}


def summary(report: Mapping[str, Any], path: Path) -> str:
    """One paragraph for the alarm: what, why, last seen, who could have, the file."""
    item, last = report["item"], report["last_seen"]
    seen = (f"last read {last['at']} by {last['sensor']}" if last
            else "not read since monitoring began")
    people = sorted({b["person"] for b in report["badged_in"] if b["person"]}
                    | {k["person"] for k in report["keys_held"]})
    return (f"LOSS REPORT: {item['name']} ({item['epc']}) {report['cause']}; {seen}; "
            f"{len(report['passages'])} portal passage(s) in 30 days; since then "
            f"{', '.join(people) or 'nobody'} badged in or held its keys; "
            f"{len(report['alarms'])} alarm(s); report {path.name}")


class LossReports:
    """Makes a loss report per item lost or missing and raises its alarm (`desk.on_loss`)."""

    def __init__(self, config: Config, desk: RecordsDesk) -> None:
        self._config = config
        self._desk = desk
        self.directory = config.state_dir / LOSSES_DIR
        # Set when the rules run: the item's last read, and the `loss:<epc>` request.
        self.last_read: LastRead | None = None
        self.raise_alarm: Callable[[str, Mapping[str, str]], object] | None = None
        self._made: dict[str, int] = {}  # epc -> when its last report was made
        self._tasks: set[asyncio.Future[None]] = set()

    def __call__(self, epc: str, cause: str, actor: str) -> None:
        """Start a report (on the event loop; the work is done off it)."""
        now = self._desk.now_ns()
        records = self._desk.records
        if epc not in records.items:
            return
        if not cause.startswith("marked lost") and now - self._made.get(epc, -_REPEAT_NS) \
                < _REPEAT_NS:
            return  # a daily count finding it missing again: the report stands
        self._made[epc] = now
        last = self.last_read(epc) if self.last_read is not None else None
        self._tasks.add(task := asyncio.ensure_future(
            self._make(records, epc, cause, actor, last, now)))
        task.add_done_callback(self._tasks.discard)

    async def _make(self, records: Records, epc: str, cause: str, actor: str,
                    last: tuple[int, str] | None, now: int) -> None:
        try:
            history = await self._desk.history("lifecycle")
            report = await asyncio.to_thread(gather, self._config, history, records, epc,
                                             cause, actor, last, now)
            path = await asyncio.to_thread(self._write, report, epc, now)
            await self._sign(path, report)
        except (OSError, DepotwatchError) as exc:
            log.error("loss report of %s not made: %s", epc, exc)
            report, path = None, self.directory / "(not written)"
        text = summary(report, path) if report is not None else \
            f"LOSS REPORT of {epc} ({cause}) could not be written: see the daemon's log"
        if self.raise_alarm is not None:
            self.raise_alarm(epc, {"summary": text, "report": str(path), "cause": cause})
        log.warning("%s", text)

    def _write(self, report: Mapping[str, Any], epc: str, now: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.fromtimestamp(now / _NS, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.directory / f"loss-{epc}-{stamp}.json"
        path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        return path

    async def _sign(self, path: Path, report: Mapping[str, Any]) -> None:
        head = report.get("audit_head") or {}
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon.book.losses", str(self._config.state_dir),
            self._config.site.id, str(path), str(head.get("seq", "")), str(head.get("hash", "")),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, errors = await child.communicate()
        if child.returncode != 0:
            log.error("loss report %s not signed: %s", path.name,
                      errors.decode(errors="replace").strip()[-500:])


def main(argv: Sequence[str]) -> int:
    """`python -m daemon.book.losses STATE_DIR SITE FILE SEQ HASH`: sign a loss report."""
    from daemon.records.signing import GatewayKey, key_path, sign_document

    state_dir, site, file, seq, head_hash = argv
    key = GatewayKey.load_or_create(key_path(Path(state_dir)))
    sign_document(Path(file), key, site=site, kind="loss_report",
                  audit_head=(int(seq), head_hash) if seq and head_hash else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

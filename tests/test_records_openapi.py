"""The OpenAPI document describes the records routes (issue 19, 27) as served: in process, over
the real records store and a real HTTP server; every answer checked against its schema."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
from test_living_records import (
    CLERK_TOKEN,
    RIFLE,
    SECOND_TOKEN,
    TARP,
    settings,
)

from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.alerts.settings import AlertingConfig
from daemon.book.live import open_book
from daemon.config.schema import Config
from daemon.vocabulary.clock import SystemClock
from daemon.web.api import build_api, serve


def _holds(schema: dict[str, Any], answer: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Every field the schema requires is there, and none it does not name (unless open)."""
    target = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
    properties = set(target.get("properties", {}))
    assert set(target.get("required", [])) <= set(answer), (target, answer)
    if target.get("additionalProperties") is not True:
        assert set(answer) <= properties, (target, answer)


def test_the_records_routes_are_documented_as_served(tmp_path: Path) -> None:
    config = Config.model_validate(settings(tmp_path / "state", 1))
    clock = SystemClock()
    book, _ = open_book(config, clock, lambda *args: None)
    alarms = AlarmDesk(AlertingConfig(), lambda alert, targets: None)
    app = build_api(alarms, Officers(config.api.tokens(), config.api.roles()), clock,
                    records=book)
    served = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None
              and not r.resource.canonical.startswith("/api/v2/")}

    async def main() -> None:
        async with serve(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as session:
            async def call(method: str, path: str, token: str = CLERK_TOKEN,
                           body: Any = None) -> tuple[int, Any]:
                async with session.request(method, server.url + path, json=body, headers={
                        "Authorization": f"Bearer {token}"}) as response:
                    return response.status, await response.json()

            _, doc = await call("GET", "/api/v1/openapi.json")
            documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
            assert documented == served
            schemas = doc["components"]["schemas"]
            paths = doc["paths"]

            def answer_of(path: str, method: str, status: int) -> dict[str, Any]:
                content = paths[path][method]["responses"][str(status)]["content"]
                schema: dict[str, Any] = content["application/json"]["schema"]
                return schema

            put = paths["/api/v1/records/{kind}/{key}"]["put"]
            assert len(put["requestBody"]["content"]["application/json"]["schema"]["oneOf"]) == 4
            assert {p["name"] for p in put["parameters"]} == {"kind", "key"}
            step = paths["/api/v1/records/items/{epc}/step"]["post"]
            assert step["requestBody"]["required"] is True
            assert set(schemas["StepBody"]["properties"]) == {
                "state", "storehouse", "document", "note"}
            assert "destroyed" in schemas["ItemState"]["enum"]

            status, listed = await call("GET", "/api/v1/records/items")
            _holds(answer_of("/api/v1/records/{kind}", "get", status), listed, schemas)
            status, one = await call("GET", f"/api/v1/records/items/{RIFLE}")
            _holds(answer_of("/api/v1/records/{kind}/{key}", "get", status), one, schemas)
            status, parked = await call("POST", f"/api/v1/records/items/{RIFLE}/step",
                                        body={"state": "destroyed", "document": "DC-1"})
            assert status == 202
            _holds(answer_of("/api/v1/records/items/{epc}/step", "post", 202), parked, schemas)
            _holds(schemas["Parked"], parked["parked"], schemas)
            status, waiting = await call("GET", "/api/v1/records/parked")
            assert doc["paths"]["/api/v1/records/parked"]["get"]["responses"]["200"][
                "content"]["application/json"]["schema"]["$ref"].endswith("/ParkedList")
            assert schemas["ParkedList"]["type"] == "array" and len(waiting) == 1
            status, change = await call(
                "POST", f"/api/v1/records/parked/{waiting[0]['id']}/approve", SECOND_TOKEN)
            assert status == 200
            _holds(answer_of("/api/v1/records/parked/{id}/approve", "post", 200), change,
                   schemas)
            status, stepped = await call("POST", f"/api/v1/records/items/{TARP}/step",
                                         body={"state": "under_repair", "document": "WO-7"})
            assert status == 200
            _holds(answer_of("/api/v1/records/items/{epc}/step", "post", 200), stepped, schemas)
            status, received = await call("POST", "/api/v1/records/consignments", body={
                "id": "C-1", "exporting_state": "Examplia", "reference": "EUC-1",
                "storehouse": "SH1", "received": dt.datetime.now(dt.UTC).isoformat(),
                "items": [{"epc": "E2000000000000000000C0FF", "serial": "S1", "name": "R"}]})
            assert status == 200, received
            _holds(answer_of("/api/v1/records/consignments", "post", 200), received, schemas)
            status, imported = await call("POST", "/api/v1/records/import", body={
                "kind": "items", "csv": "epc,name,kind,lot,storehouse\n"
                "E2000000000000000000D0AA,Tent,other,,SH1\n", "dry_run": True})
            assert status == 200, imported
            _holds(answer_of("/api/v1/records/import", "post", 200), imported, schemas)
            _holds(schemas["WriteShown"], imported["changes"][0], schemas)
            status, refused = await call("POST", f"/api/v1/records/items/{TARP}/step",
                                         body={"state": "nonsense"})
            assert status == 422
            _holds(answer_of("/api/v1/records/items/{epc}/step", "post", 422), refused, schemas)

    asyncio.run(main())

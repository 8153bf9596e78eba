"""`depotwatch dashboards push` over aiohttp against a local server that records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from daemon.dashboards.grafana import GrafanaError, push
from daemon.dashboards.overview import OVERVIEW_UID

REPO = Path(__file__).resolve().parent.parent
TOKEN = "glsa_test-token-1234"


@dataclass
class FakeGrafana:
    """Answers the few Grafana HTTP API calls the push makes; keeps every request."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    status: int | None = None  # force every answer to this status


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never send the test's requests through an http_proxy from the environment.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = {"method": self.command, "path": self.path,
                       "authorization": self.headers.get("Authorization"),
                       "body": json.loads(raw) if raw else None}
            fake.requests.append(request)
            return request

        def do_GET(self) -> None:
            self._record()
            if fake.status is not None:
                self._answer(fake.status, {"message": "invalid API key"})
            elif self.path.startswith("/api/folders/"):
                uid = self.path.rsplit("/", 1)[1]
                if uid in fake.folders:
                    self._answer(200, {"uid": uid, "title": uid})
                else:
                    self._answer(404, {"message": "folder not found"})
            else:
                self._answer(404, {"message": "not found"})

        def do_POST(self) -> None:
            request = self._record()
            if fake.status is not None:
                self._answer(fake.status, {"message": "invalid API key"})
            elif self.path == "/api/folders":
                fake.folders.add(request["body"]["uid"])
                self._answer(200, {"uid": request["body"]["uid"], "id": 7})
            elif self.path == "/api/dashboards/db":
                uid = request["body"]["dashboard"]["uid"]
                self._answer(200, {"id": 3, "uid": uid, "status": "success", "version": 1,
                                   "url": f"/d/{uid}/depot-overview"})
            else:
                self._answer(404, {"message": "not found"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def _cli(*args: str, token: str | None = TOKEN,
         python: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DEPOTWATCH_GRAFANA_TOKEN"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    if token is not None:
        env["DEPOTWATCH_GRAFANA_TOKEN"] = token
    code = python + "import sys; from daemon.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=REPO)


def test_push_creates_the_folder_and_uploads_the_overview(grafana: FakeGrafana) -> None:
    done = _cli("dashboards", "push", "--url", grafana.url, "-c",
                str(REPO / "examples" / "demo-depot.yaml"))
    assert done.returncode == 0, done.stderr
    assert f"pushed {grafana.url}/d/{OVERVIEW_UID}/depot-overview" in done.stdout
    assert [(r["method"], r["path"]) for r in grafana.requests] == [
        ("GET", "/api/folders/depotwatch"), ("POST", "/api/folders"),
        ("POST", "/api/dashboards/db"), ("POST", "/api/dashboards/db")]
    assert grafana.requests[3]["body"]["dashboard"]["uid"] == "depotwatch-hq-overview"
    assert {r["authorization"] for r in grafana.requests} == {f"Bearer {TOKEN}"}
    body = grafana.requests[2]["body"]
    assert body["overwrite"] is True and body["folderUid"] == "depotwatch"
    assert body["dashboard"]["uid"] == OVERVIEW_UID and "id" not in body["dashboard"]
    assert body["message"].startswith("depotwatch ")
    # The config's site is the dashboard's default depot; the token never reaches the output.
    assert body["dashboard"]["templating"]["list"][1]["current"]["value"] == "depot-north"
    assert TOKEN not in done.stdout + done.stderr


def test_push_again_keeps_the_folder(grafana: FakeGrafana) -> None:
    grafana.folders.add("depotwatch")
    urls = push([{"uid": "x", "title": "x", "id": 5}], grafana.url, TOKEN)
    assert urls == ["/d/x/depot-overview"]
    assert [(r["method"], r["path"]) for r in grafana.requests] == [
        ("GET", "/api/folders/depotwatch"), ("POST", "/api/dashboards/db")]


def test_a_refused_token_is_a_clear_error(grafana: FakeGrafana) -> None:
    grafana.status = 401
    done = _cli("dashboards", "push", "--url", grafana.url)
    assert done.returncode == 1
    assert "dashboards push failed: Grafana at" in done.stderr and "HTTP 401" in done.stderr
    assert TOKEN not in done.stderr


def test_an_unreachable_grafana_is_a_clear_error() -> None:
    with pytest.raises(GrafanaError, match="not reachable"):
        push([{"uid": "x"}], "http://127.0.0.1:9", TOKEN, timeout_s=2)


def test_push_needs_a_token(grafana: FakeGrafana) -> None:
    done = _cli("dashboards", "push", "--url", grafana.url, token=None)
    assert done.returncode == 2 and "DEPOTWATCH_GRAFANA_TOKEN" in done.stderr
    assert grafana.requests == []


def test_push_needs_no_grafana_client(grafana: FakeGrafana) -> None:
    # The push is plain aiohttp now (issue 23): it works with grafana-client unimportable.
    done = _cli("dashboards", "push", "--url", grafana.url,
                python="import sys; sys.modules['grafana_client'] = None; ")
    assert done.returncode == 0, done.stderr
    assert [r["path"] for r in grafana.requests][-1] == "/api/dashboards/db"

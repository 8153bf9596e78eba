"""Hostile requests to every route of the API and the console: never a 500, never a traceback;
the API answers each refusal as JSON (hypothesis drives the requests against a real daemon)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess_daemon import TOKEN, Running, depot, running
from servers import Mosquitto

from daemon.web.api_routes import MAX_BODY_BYTES


@pytest.fixture(scope="module")
def daemon(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One daemon for every example: its API and console on a free port."""
    state = tmp_path_factory.mktemp("fuzz") / "state"
    with running(depot(state, mosquitto.port)) as live:
        yield live


def _routes(live: Running) -> list[tuple[str, str]]:
    """Every route the daemon serves, as (method, path template)."""
    found = []
    for route in live.daemon.api.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if path and route.method != "HEAD":
            found.append((route.method, str(path)))
    return sorted(set(found))


_segments = st.one_of(st.sampled_from(["door_armed.SH1-D1", "x", "..", "%00", "a" * 300]),
                      st.text(max_size=20))
_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"\xff\xfe\xfd", b'{"note": "\xff"}', b'{"note": "\\ud800"}',
                     b'{"finding": 7}', b"[1,2]", b"null", b'{"note": ' + b"9" * 5000 + b"}",
                     b"csrf=\xff&token=\xfe", b"token=%FF%FE&csrf=%ED%A0%80", b"a" * 70_000,
                     b'{"matchers": [], "reason": {}, "for_s": "1e400"}',
                     b"--x\r\nContent-Disposition: form-data\r\n\r\n\xff\r\n--x--\r\n"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["note", "finding", "matchers", "reason",
                                                    "for_s", "ends_at", "rule", "csrf"]), inner,
                                   max_size=4),
                 max_leaves=8).map(lambda v: json.dumps(v).encode()),
)
_types = st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x", "text/plain; charset=latin-7",
                          "application/json; charset=utf-16", ""])


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), body=_bodies, content_type=_types, token=st.booleans())
def test_no_request_gets_a_500(daemon: Running, data: st.DataObject, body: bytes,
                               content_type: str, token: bool) -> None:
    method, template = data.draw(st.sampled_from(_routes(daemon)))
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        segment = urllib.parse.quote(data.draw(_segments), safe="")
        path = path[:start] + (segment or "x") + path[end + 1:]
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {TOKEN}"
    url = urllib.parse.urlsplit(daemon.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request(method, path, body=body if method != "GET" else None, headers=headers)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    assert response.status < 500, (method, path, body[:100], response.status, answer[:300])
    if path.startswith("/api/") and response.status >= 400:
        refusal = json.loads(answer)
        # Alertmanager's v2 API words its own refusals as one JSON string (amtool prints it).
        assert "error" in refusal or (path.startswith("/api/v2/") and isinstance(refusal, str)
                                      and refusal), answer[:300]
    if len(body) > MAX_BODY_BYTES and method == "POST" and response.status != 404:
        assert response.status in (401, 403, 413), (path, response.status)


@pytest.mark.parametrize(("path", "content_type", "body", "status"), [
    ("/api/v1/alerts/door_armed.SH1-D1/ack", "application/json", b'{"note": "\xff"}', 400),
    ("/api/v1/silences", "application/json", b"\x80", 400),
    ("/api/v1/silences", "application/json", b'{"matchers": [], "for_s": "x"}', 422),
    ("/api/v1/silences", "application/json", b"{" * (MAX_BODY_BYTES + 1), 413),
    ("/console/login", "application/x-www-form-urlencoded", b"token=\x80", 400),
    ("/console/login", "multipart/form-data; boundary=x", b"", 400),
])
def test_bodies_the_daemon_cannot_read_are_a_4xx_with_a_json_error(
        daemon: Running, path: str, content_type: str, body: bytes, status: int) -> None:
    url = urllib.parse.urlsplit(daemon.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={
            "Content-Type": content_type, "Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == status, answer
    assert answer["error"]

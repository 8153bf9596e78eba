"""How the API says no: every refusal, aiohttp's own included, is a JSON body with its status."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from daemon.alerts.alarm import LifecycleError
from daemon.web.api_bodies import RequestBody

__all__ = ["Refusal", "as_json", "lifecycle_conflict", "read_body", "read_form"]

Body = TypeVar("Body", bound=RequestBody)


class Refusal(Exception):
    """An answer other than success, as a JSON body {"error": ..., "detail": ...}."""

    def __init__(self, status: int, message: str, detail: Any = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers

    def response(self) -> web.Response:
        """The refusal as the caller reads it."""
        body: dict[str, Any] = {"error": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return web.json_response(body, status=self.status, headers=self.headers)


async def read_body(request: web.Request, model: type[Body]) -> Body:
    """The request's JSON body as `model` (an empty body as {}), or a 422 saying what is wrong."""
    raw = await request.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Before pydantic: its error report cannot carry bytes that are not UTF-8 (a 500).
        raise Refusal(400, "request body is not UTF-8 text",
                      f"{exc.reason} at byte {exc.start}") from None
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        # exc.json() makes every input JSON-ready (a malformed body's bytes included).
        raise Refusal(422, "invalid request body", json.loads(
            exc.json(include_url=False, include_context=False))) from None


async def read_form(request: web.Request) -> Mapping[str, object]:
    """The request's form (the console's), or a 400: a form that is not UTF-8 or a broken
    multipart body is the sender's mistake, not the server's."""
    try:
        return await request.post()
    except ValueError as exc:  # UnicodeDecodeError included
        raise Refusal(400, "request body is not a readable form", str(exc)[:200]) from None


@contextlib.contextmanager
def lifecycle_conflict() -> Iterator[None]:
    """A refused lifecycle step is a 409 carrying the desk's message for the officer."""
    try:
        yield
    except LifecycleError as exc:
        raise Refusal(409, str(exc)) from None


@web.middleware
async def as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every refusal and every aiohttp error (404, 405, 413) as JSON."""
    # One shape for the CLI to read, whoever refused.
    try:
        return await handler(request)
    except Refusal as refusal:
        return refusal.response()
    except UnicodeDecodeError as exc:
        # A form (console) or body that is not UTF-8: aiohttp decodes it when it is read.
        return Refusal(400, "request body is not UTF-8 text",
                       f"{exc.reason} at byte {exc.start}").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return web.json_response({"error": exc.reason}, status=exc.status, headers=allow)

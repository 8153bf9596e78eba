"""The API's OpenAPI 3.1 document, generated from the route table and the very types served."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter

from daemon.alerts.alarm import Alarm
from daemon.alerts.silences import Silence
from daemon.notifiers.base import NotifierFigures
from daemon.web.api_records import RECORDS_ROUTES
from daemon.web.api_records_schema import ANSWERS
from daemon.web.api_routes import MAX_BODY_BYTES, ROUTES, Route

__all__ = ["openapi_document"]


def openapi_document(records: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 description of `ROUTES` (and the records routes, when the daemon keeps
    the book), schemas generated from the very types served."""
    ref = "#/components/schemas/{model}"
    routes = (*ROUTES, *(RECORDS_ROUTES if records else ()))
    bodies = {b for r in routes for b in (*((r.body,) if r.body else ()), *r.bodies)}
    adapters: list[tuple[str, Any, TypeAdapter[Any]]] = [
        ("Alarm", "serialization", TypeAdapter(Alarm)),
        ("Silence", "serialization", TypeAdapter(Silence)),
        ("NotifierFigures", "serialization", TypeAdapter(NotifierFigures)),
        *((b.__name__, "validation", TypeAdapter(b)) for b in sorted(bodies, key=str)),
        *((name, "serialization", TypeAdapter(model)) for name, model in ANSWERS.items()
          if records),
    ]
    _, generated = TypeAdapter.json_schemas(adapters, ref_template=ref)
    schemas: dict[str, Any] = dict(generated.get("$defs", {}))
    for name in ("Alarm", "Silence"):
        # to_dict() writes every field, defaulted or not.
        schemas[name]["required"] = list(schemas[name]["properties"])
    schemas |= {
        "AlarmList": _object({"alerts": {"type": "array", "items": {"$ref": ref.format(
            model="Alarm")}}}),
        "NotifierList": _object({"notifiers": {"type": "array", "items": {"$ref": ref.format(
            model="NotifierFigures")}}}),
        "SilenceList": _object({"silences": {"type": "array", "items": {"$ref": ref.format(
            model="Silence")}}}),
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "detail": {"description": "pydantic's errors, with 422; with a refused arming "
                                      "(409), the zone's answer and its not_secured list"}}},
        "Health": {**_object({"status": {"type": "string"}}), "additionalProperties": True},
        "OpenApi": {"type": "object", "description": "An OpenAPI 3.1 document"},
        "Zone": {**_object({"storehouse": {"type": "string"}, "state": {"type": "string"},
                            "result": {"type": "string"},
                            "not_secured": {"type": "array", "items": {"type": "string"}}}),
                 "additionalProperties": True},
    }
    if records:
        schemas["ParkedList"] = {"type": "array", "items": {"$ref": ref.format(
            model="Parked")}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": "depotwatch alert API", "version": "1",
                 "description": "Officers list alarms, acknowledge them, record on-site checks "
                                "and manage silences. Every /api/v1 route but this document "
                                "takes an officer's bearer token."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "officerToken": {"type": "http", "scheme": "bearer",
                             "description": "An officer's token (the config keeps its SHA-256)"},
        }},
        "security": [{"officerToken": []}],
    }


_REASONS = {401: "No token, or not an officer's",
            403: "The officer's role does not allow this (viewer)",
            404: "No such alarm, silence, storehouse or record",
            409: "The lifecycle refuses this step (the message says why)",
            413: f"Body over {MAX_BODY_BYTES} bytes",
            422: "Invalid request body or query",
            429: "Too many wrong tokens from this address: wait Retry-After seconds",
            503: "Not healthy"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _operation(route: Route, ref: str) -> dict[str, Any]:
    def answer(description: str, schema: str) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": ref.format(model=schema)}}}}

    responses = {str(route.status): answer("Done", route.response)}
    if route.accepted:
        responses["202"] = answer("Waits for a second officer's approval", route.accepted)
    refusals = (*route.refusals, *(() if route.public else (401, 429)),
                *((413,) if route.body or route.bodies else ()))
    for status in refusals:
        responses[str(status)] = answer(_REASONS[status], "Health" if status == 503 else "Error")
    operation: dict[str, Any] = {"operationId": route.operation, "summary": route.summary,
                                 "responses": dict(sorted(responses.items()))}
    if route.public:
        operation["security"] = []
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", route.path)]
    if route.operation == "listAlerts":
        parameters.append({"name": "all", "in": "query", "required": False,
                           "schema": {"type": "string", "enum": ["0", "1", "false", "true"]}})
    parameters += [{"name": name, "in": "query", "required": False,
                    "schema": {"type": "string"}} for name in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        required = any(f.is_required() for f in route.body.model_fields.values())
        operation["requestBody"] = {"required": required, "content": {"application/json": {
            "schema": {"$ref": ref.format(model=route.body.__name__)}}}}
    elif route.bodies:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [{"$ref": ref.format(model=b.__name__)}
                                 for b in route.bodies]}}}}
    return operation

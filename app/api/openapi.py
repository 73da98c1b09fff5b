"""The OpenAPI document says what the API really answers: every error as the `Error` schema
({"error": {"code", "message", "detail"}}, app/api/errors.py) and every 4xx a route can return.

The common statuses are derived here, once, from what each operation takes:
- 422 for any parameter or body (a validation error, or a value the service refuses);
- 404 for an id in the path (the XxxDep lookups) or an `*_id` field in the JSON body;
- 400 and 413 for a body (one that cannot be parsed; one over the limit: app/api/body_limits.py).
A route adds what only its service knows (a name that exists: 409; a path outside the model roots:
403; runs that are not aligned: 409) with `responses=errors(...)` in its decorator. FastAPI's own
HTTPValidationError schema, which no response of ours has, is dropped.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.schemas.common import ErrorResponse

ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {400: "Bad request", 403: "Forbidden", 404: "Not found", 409: "Conflict",
                413: "Request body too large", 422: "Invalid input", 507: "The server's disk is full"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route decorator: statuses this route's service can answer, as `Error`."""
    return {status: {"model": ErrorResponse, "description": DESCRIPTIONS[status]} for status in statuses}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def document_errors(schema: dict) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    error = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error.pop("$defs", {}))
    components["Error"] = error
    for path_item in schema.get("paths", {}).values():
        for method in METHODS:
            if operation := path_item.get(method):
                responses = operation["responses"]
                statuses = error_statuses(operation, components) | {int(s) for s in responses if s.startswith("4")}
                for status in sorted(statuses):
                    responses[str(status)] = {"description": DESCRIPTIONS.get(status, "Error"),
                                              "content": {"application/json": {"schema": ERROR_REF}}}


def error_statuses(operation: dict, components: dict) -> set[int]:
    """The 4xx statuses an operation can answer by what it takes (see the module docstring)."""
    parameters = operation.get("parameters", [])
    body = operation.get("requestBody")
    statuses = {422} if parameters or body else set()
    if any(p["in"] == "path" for p in parameters) or (body and _has_id_field(body, components)):
        statuses.add(404)
    if body:
        statuses |= {400, 413}  # a body that cannot be parsed (malformed multipart); one over the limit
    return statuses


def _has_id_field(body: dict, components: dict) -> bool:
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    for alternative in schema.get("anyOf", [schema]):
        ref = alternative.get("$ref", "")
        properties = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
        if any(name.endswith("_id") for name in properties):
            return True
    return False

"""Every error leaves the API as JSON: {"error": {"code", "message", "detail"}} — never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.availability import DATABASE_ERRORS, database_message
from app.services.errors import DomainError, Unavailable

log = logging.getLogger("focalscope.api")
# What a client waiting out a database restart should wait before it asks again.
RETRY_AFTER_S = 5


def error_response(status: int, code: str, message: str, detail: object | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    content = {"error": {"code": code, "message": message, "detail": detail}}
    return JSONResponse(status_code=status, content=content, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError):
        return error_response(exc.status_code, exc.code, exc.message, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        message = f"{where}: {first['msg']}" if where else first["msg"]
        return error_response(422, "invalid_input", message, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    async def _database_unavailable(_request: Request, exc: Exception):
        # The driver's message (host, port, file) goes to the log, not to every caller.
        log.warning("database unavailable: %s", database_message(exc))
        return error_response(503, Unavailable.code,
                              "the database is unavailable (restarting, unreachable or full); try again shortly",
                              headers={"Retry-After": str(RETRY_AFTER_S)})

    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error; see the server log")

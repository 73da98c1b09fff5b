"""Request body limits, counted as the bytes arrive.

Starlette's form parser would spool a whole multipart body to a temporary file before a route could
look at its size (a 300 MB upload against a 2 MB limit wrote 266 MB first). This ASGI middleware
refuses a declared Content-Length over the route's limit before reading anything, and counts the
body's bytes as the server receives them, so that an upload that sends more than it declared, or
declares nothing (chunked), is stopped at most one received chunk past the limit.

Upload routes have their own limits from the settings (read per request, so that a changed setting
applies at once); every other request carries JSON of a few hundred bytes and gets DEFAULT_LIMIT.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.core.config import Settings

# A JSON request (a run, a training job, a path to register) is far below this.
DEFAULT_LIMIT = 1024 * 1024
# Room for the multipart framing (boundaries, part headers, form fields) around the files.
MULTIPART_OVERHEAD = 64 * 1024

# POST routes that take uploads (path below the API prefix) and their limits.
UPLOAD_LIMITS: dict[str, Callable[[Settings], int]] = {
    "/corpora": lambda settings: settings.max_upload_bytes + MULTIPART_OVERHEAD,
    "/checkpoints/upload": lambda settings: settings.max_checkpoint_upload_bytes + MULTIPART_OVERHEAD,
}
# PUT routes under this path take one raw checkpoint file each (app.api.routes.checkpoint_store).
STORE_PREFIX = "/checkpoint-files/"


class BodyTooLarge(HTTPException):
    """Raised from the counted receive channel. An HTTPException, because FastAPI passes those on
    from body parsing unchanged (any other error there becomes a 400), and the app's handler turns
    it into the JSON 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds the {limit_text(limit)} limit for this route")


def limit_text(limit: int) -> str:
    return f"{limit / 1024 / 1024:.3g} MB"


class BodyLimits:
    def __init__(self, app: ASGIApp, *, settings: Settings, prefix: str):
        self.app = app
        self.settings = settings
        self.uploads = {prefix + path: limit for path, limit in UPLOAD_LIMITS.items()}
        self.store_prefix = prefix + STORE_PREFIX

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] == "PUT" and scope["path"].startswith(self.store_prefix):
            return self.settings.max_checkpoint_upload_bytes
        upload_limit = self.uploads.get(scope["path"]) if scope["method"] == "POST" else None
        return upload_limit(self.settings) if upload_limit else DEFAULT_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(413, "too_large", f"request body of {declared} bytes exceeds the "
                                                        f"{limit_text(limit)} limit for this route")
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted_receive, send)

"""Who may call which route. Every API route's scope is declared once, in ROUTE_SCOPES below; the
`authorize` dependency (added to every API router in app.main) reads it and checks the request's
bearer token against the server's policy:

- open (loopback without --require-token, or --insecure-open): no token needed, every caller is
  the admin (one local user);
- otherwise a token of at least the route's scope (read < write < admin), except that reads need
  none with --public-read.

A missing, unknown or revoked token is a 401; a token whose scope is too weak, a 403. A route missing
from the table needs an admin token (and tests/test_access.py fails)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api import API_PREFIX
from app.api.deps import SessionDep
from app.services import tokens
from app.services.errors import Forbidden, Unauthorized
from app.vocab import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE, SCOPES

SERIES_ON_CORPUS = "/series/{series_id}/corpora/{corpus_id}"
RUN_DOCUMENT = "/runs/{run_id}/documents/{document_id}"
READ_PATHS = (
    "/health", "/vocabulary",
    "/corpora", "/corpora/{corpus_id}", "/corpora/{corpus_id}/documents", "/documents/{document_id}",
    "/checkpoints", "/checkpoints/{checkpoint_id}", "/checkpoints/{checkpoint_id}/files",
    "/series", "/series/{series_id}", "/series/{series_id}/curve",
    "/runs", "/runs/{run_id}", "/runs/{run_id}/summary", "/runs/{run_id}/documents",
    f"{RUN_DOCUMENT}/neighbours", f"{RUN_DOCUMENT}/tokens",
    "/jobs", "/jobs/{job_id}",
    "/training/presets", "/training/losses", "/training/save-steps",
    "/experiments", "/experiments/{experiment_id}", "/experiments/{experiment_id}/comparison", "/studies", "/studies/{name}",
    f"{SERIES_ON_CORPUS}/checkpoints", f"{SERIES_ON_CORPUS}/documents/{{document_id}}/trajectory",
    f"{SERIES_ON_CORPUS}/documents/{{document_id}}/tokens/{{position}}", f"{SERIES_ON_CORPUS}/transitions",
    f"{SERIES_ON_CORPUS}/transitions/occurrences", f"{SERIES_ON_CORPUS}/learned-at", f"{SERIES_ON_CORPUS}/cartography",
    "/compare", "/compare/documents/{document_id}", "/runs/{run_id}/difficulty", "/runs/{run_id}/export",
    "/runs/{run_id}/types", "/runs/{run_id}/types/{token_id}/occurrences",
)
# (method, path within /api/v1) → the weakest scope that may call it.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    **{("GET", path): SCOPE_READ for path in READ_PATHS},
    ("POST", "/corpora"): SCOPE_WRITE,
    ("POST", "/checkpoints/upload"): SCOPE_WRITE,
    # A checkpoint's bytes are the model itself, more than a read token (a notebook, a public
    # dashboard) is for; workers on other hosts fetch with a write token, the scope that runs models.
    ("GET", "/checkpoints/{checkpoint_id}/files/{name:path}"): SCOPE_WRITE,
    # Workers publish the checkpoints they train (app.services.checkpoint_store).
    ("POST", "/checkpoint-files/missing"): SCOPE_WRITE,
    ("PUT", "/checkpoint-files/{sha256}"): SCOPE_WRITE,
    ("POST", "/runs"): SCOPE_WRITE,
    ("POST", "/runs/{run_id}/cancel"): SCOPE_WRITE,
    ("POST", "/runs/{run_id}/retry"): SCOPE_WRITE,
    ("POST", f"{SERIES_ON_CORPUS}/score"): SCOPE_WRITE,
    ("POST", "/training/jobs"): SCOPE_WRITE,
    ("POST", "/experiments"): SCOPE_WRITE,
    # These make the server read its own files (under the model roots): the admin's call.
    ("POST", "/checkpoints"): SCOPE_ADMIN,
    ("POST", "/series/register"): SCOPE_ADMIN,
}

bearer = HTTPBearer(auto_error=False, description="An API token from `focalscope token create`; "
                                                  "not needed when the server is open (loopback).")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the scope of their token, the admin's in open mode, None for an anonymous reader."""

    scope: str | None

    @property
    def sees_server_paths(self) -> bool:
        return self.scope == SCOPE_ADMIN


def route_scope(method: str, path: str) -> str:
    """The declared scope of a route (its path as declared, within the API prefix); admin if undeclared."""
    return ROUTE_SCOPES.get(("GET" if method == "HEAD" else method, path), SCOPE_ADMIN)


def authorize(
    request: Request, session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    settings = request.app.state.settings
    if settings.open_access:
        return Caller(scope=SCOPE_ADMIN)
    needed = route_scope(request.method, _route_path(request))
    caller = Caller(scope=None)
    if credentials is not None:
        token = tokens.verify_token(session=session, secret=credentials.credentials)
        if token is None:
            raise Unauthorized("the API token is unknown or revoked")
        caller = Caller(scope=token.scope)
    if caller.scope is None:
        if needed == SCOPE_READ and settings.public_read:
            return caller
        raise Unauthorized(f"this server needs an API token with scope {needed!r} (Authorization: Bearer …)")
    if SCOPES.index(caller.scope) < SCOPES.index(needed):
        raise Forbidden(f"this needs a token with scope {needed!r}; this token's scope is {caller.scope!r}")
    return caller


def _route_path(request: Request) -> str:
    path = request.scope["route"].path
    # Routes of an included router carry their own path here, or the prefixed one (older FastAPI).
    return path.removeprefix(API_PREFIX)


CallerDep = Annotated[Caller, Depends(authorize)]

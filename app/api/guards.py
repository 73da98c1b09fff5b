"""Browser defences, in every access mode (open on loopback too), as pure ASGI middleware so that
streaming and gzip stay as cheap as they were:

- HostGuard: a Host header that is not one of ours is refused (421). A DNS-rebinding page reaches
  the server under its own name, so the browser's same-origin rule would let it read the API.
- CrossSiteGuard: a state-changing request (POST, PUT, PATCH, DELETE) that a browser marks as coming
  from another site (Sec-Fetch-Site: cross-site / same-site, or an Origin that is not ours) is refused
  (403) before its body is read: a page elsewhere can post a form or a multipart upload to a local
  server without any preflight. Requests without those headers (curl, notebooks, the CLI) pass.
- SecurityHeaders: an enforcing Content-Security-Policy (app.api.content_policy), nosniff, no
  referrer, no framing, on every response.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from app.api.errors import error_response

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Addresses that mean "every interface": nobody sends them as a Host.
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSED_FETCH_SITES = frozenset({"cross-site", "same-site"})
DEFAULT_PORTS = {"http": 80, "https": 443}
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def split_host(host: str) -> tuple[str, int | None]:
    """"Example.org:8000" → ("example.org", 8000); "[::1]:8000" → ("::1", 8000); no port → None."""
    name, port = host.strip().lower(), None
    if name.count(":") > 1 and not name.startswith("["):
        return name, None  # a bare IPv6 address, as in a setting
    if name.startswith("["):
        end = name.find("]")
        name, rest = name[1:end], name[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = name.partition(":")
    if port_text.isdigit():
        port = int(port_text)
    return name.rstrip("."), port


def allowed_host_names(bound_host: str, configured: Iterable[str]) -> list[str]:
    """The loopback names, the address the server is bound to (unless it is every interface), and the
    configured names."""
    names = [*LOOPBACK_NAMES, *configured]
    if bound_host not in WILDCARD_ADDRESSES:
        names.append(bound_host)
    return names


class HostGuard:
    def __init__(self, app, *, allowed: Iterable[str]):
        self.app = app
        allowed = [name.strip().lower() for name in allowed]
        self.any_host = "*" in allowed
        self.allowed = frozenset(split_host(name)[0] for name in allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.any_host:
            return await self.app(scope, receive, send)
        host = header(scope, b"host")
        if not host:
            response = error_response(400, "bad_host", "the request has no Host header")
        elif split_host(host)[0] not in self.allowed:
            response = error_response(
                421, "bad_host", f"this server does not answer to the host name {host!r}; "
                                 f"its administrator can allow it with --allowed-host")
        else:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)


class CrossSiteGuard:
    def __init__(self, app, *, allowed_origins: Iterable[str]):
        self.app = app
        self.allowed_origins = frozenset(origin.rstrip("/").lower() for origin in allowed_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in STATE_CHANGING_METHODS:
            refusal = self.refusal(scope)
            if refusal is not None:
                return await error_response(403, "cross_site", refusal)(scope, receive, send)
        await self.app(scope, receive, send)

    def refusal(self, scope) -> str | None:
        """Why this state-changing request is refused, or None to let it pass."""
        origin, site = header(scope, b"origin"), header(scope, b"sec-fetch-site")
        if origin is not None and origin.rstrip("/").lower() in self.allowed_origins:
            return None
        if site in REFUSED_FETCH_SITES:
            return f"a {site} request may not change anything here (Sec-Fetch-Site: {site})"
        if origin is not None and not same_origin(origin, header(scope, b"host") or ""):
            return f"a request from {origin} may not change anything here"
        return None


def same_origin(origin: str, host: str) -> bool:
    """Whether the Origin names the host the request was sent to. The scheme is not compared: behind
    a TLS proxy the page is https and the app sees http."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False  # "null" (sandboxed frames, file: pages) and other schemes are never ours
    try:
        origin_port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return False
    name, port = split_host(host)
    return (parts.hostname, origin_port) == (name, port or DEFAULT_PORTS[parts.scheme])


class AnonymousWriteGuard:
    """When tokens are required, a state-changing request without any bearer token gets its 401 here,
    before its body is read: FastAPI parses a multipart upload before the `authorize` dependency runs,
    and nobody without a token should make the server spool one. (`authorize` checks the token itself.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["method"] in STATE_CHANGING_METHODS
                and not (header(scope, b"authorization") or "").lower().startswith("bearer ")):
            message = "this server needs an API token to change anything (Authorization: Bearer …)"
            response = error_response(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app, *, content_security_policy: str):
        self.app = app
        self.headers = ((b"content-security-policy", content_security_policy.encode()), *SECURITY_HEADERS)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", ())}
                extra = [(key, value) for key, value in self.headers if key not in present]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

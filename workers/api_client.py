"""The worker's side of the checkpoint file routes, on the standard library's HTTP client: downloads
(GET /api/v1/checkpoints/{id}/files[/{name}]) to fetch a checkpoint, and the store
(POST /api/v1/checkpoint-files/missing, PUT /api/v1/checkpoint-files/{sha256}) to publish one it trained.

Failures are sorted for the queue. The server saying the checkpoint or a file is not there, or has
changed (404, 409, 422), is the checkpoint's problem: a PermanentError, the job fails at once. An
unreachable server, a 5xx or a refused token is this worker's problem: retryable, so that the shard
goes back to the queue where a worker that can reach the API may take it. The token travels in a
header that is never logged, never put in an error and never sent on to a redirect's target.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from pydantic import SecretStr

from app.api import API_PREFIX
from app.services.checkpoint_manifest import FileEntry, Manifest, manifest_digest, safe_name
from app.services.errors import DomainError
from workers.context import PermanentError

# Seconds a connection or a read may stall (not a whole download's duration).
SOCKET_TIMEOUT_S = 60.0
CHECKPOINT_STATUSES = (404, 409, 422)


class FetchFailed(Exception):
    """The API could not be asked (unreachable, overloaded, token refused) or a transfer broke off:
    retryable, on this worker or another."""


class ApiClient:
    def __init__(self, base_url: str, token: SecretStr | None, *, timeout: float = SOCKET_TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def manifest(self, checkpoint_id: int) -> Manifest:
        """The checkpoint's manifest, every name checked and its digest recomputed."""
        with self._request(f"/checkpoints/{checkpoint_id}/files") as response:
            body = response.read()
        try:
            answer = json.loads(body)
            files = tuple(FileEntry(name=safe_name(str(f["name"])), size=int(f["size"]), sha256=str(f["sha256"]))
                          for f in answer["files"])
        except (ValueError, KeyError, TypeError, DomainError) as exc:
            raise PermanentError(f"checkpoint {checkpoint_id}: the API sent an unreadable manifest ({exc})") from None
        if any(entry.size < 0 for entry in files) or manifest_digest(files) != answer.get("sha256"):
            raise PermanentError(f"checkpoint {checkpoint_id}: the API's manifest does not add up to its digest")
        return Manifest(tuple(sorted(files, key=lambda e: e.name)))

    @contextmanager
    def file(self, checkpoint_id: int, name: str) -> Iterator[http.client.HTTPResponse]:
        """The response streaming one file of the checkpoint (read it in chunks)."""
        with self._request(f"/checkpoints/{checkpoint_id}/files/{urllib.parse.quote(name, safe='/')}") as response:
            yield response

    def missing(self, hashes: list[str]) -> list[str]:
        """Those of these file hashes the server's store lacks."""
        body = json.dumps({"sha256": hashes}).encode()
        with self._request("/checkpoint-files/missing", method="POST", data=body,
                           headers={"Content-Type": "application/json"}) as response:
            return list(json.loads(response.read())["missing"])

    def put_file(self, sha256: str, path: Path) -> None:
        """Upload one file into the server's store under its sha256 (which the server checks)."""
        with path.open("rb") as source:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
            with self._request(f"/checkpoint-files/{sha256}", method="PUT", data=source, headers=headers) as response:
                response.read()

    @contextmanager
    def _request(self, path: str, *, method: str = "GET", data: bytes | BinaryIO | None = None,
                 headers: dict[str, str] | None = None) -> Iterator[http.client.HTTPResponse]:
        request = urllib.request.Request(self.base_url + API_PREFIX + path, data=data, method=method,
                                         headers=headers or {})
        if self.token is not None:
            # Unredirected: a redirect to another host must not carry the token there.
            request.add_unredirected_header("Authorization", f"Bearer {self.token.get_secret_value()}")
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as refused:
            raise self._refusal(f"{method} {API_PREFIX}{path}", refused) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise FetchFailed(f"cannot reach the API at {self.base_url}: {exc}") from None
        with response:
            try:
                yield response
            except (OSError, http.client.HTTPException) as exc:  # the transfer broke off, or writing it failed
                raise FetchFailed(f"{method} {API_PREFIX}{path} to {self.base_url} failed midway: {exc!r}") from None

    def _refusal(self, call: str, refused: urllib.error.HTTPError) -> Exception:
        try:
            message = json.loads(refused.read())["error"]["message"]
        except (ValueError, KeyError, TypeError, OSError):
            message = refused.reason
        what = f"{call}: HTTP {refused.code}: {message}"
        if refused.code in CHECKPOINT_STATUSES:
            return PermanentError(what)
        if refused.code == 413:  # a published file over the server's limit: every retry would be refused
            return PermanentError(f"{what} (the server's FOCALSCOPE_MAX_CHECKPOINT_UPLOAD_MB applies to each file)")
        if refused.code in (401, 403):
            return FetchFailed(f"{what} (give this worker a write-scope token: FOCALSCOPE_API_TOKEN or --api-token)")
        return FetchFailed(what)

"""A document's tokens as the API sends them: encoded and compressed once, then served from memory.

The tokens of a 2,048-token document are about 0.5 MB of JSON. Building them (stored arrays, texts,
top-k texts) takes ~10 ms and gzip ~9 ms on one core, and a dashboard asks for the same documents
again and again (page loads, the scrubber's neighbours, several readers of one run). The stored scores
of a (run, document) never change once written, so the gzip body is kept, keyed by the score row, γ
and whether the tokenizer's vocabulary (the top-k texts) was there yet; least recently used entries
go first, within a byte budget. Each body carries an ETag, so a browser's revalidation costs a 304.
A client that does not accept gzip gets the JSON decompressed.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import orjson
from fastapi import Request, Response

from app.services.series_cache import ResultCache

# About a hundred 2,048-token documents (~220 KB compressed each).
MAX_BYTES = 24 * 2**20
# gzip's level 4: within a few percent of level 6's size at a third of its time (measured on token JSON).
GZIP_LEVEL = 4
# Revalidate every time (a run's scores are final, but the ETag check is cheap and keeps a shared
# link honest after a database is replaced); "private": the answer may depend on the caller's token.
CACHE_CONTROL = "private, no-cache"


@dataclass(frozen=True)
class EncodedTokens:
    gzip: bytes
    etag: str


def encode(payload: dict) -> EncodedTokens:
    """The payload as JSON (numpy arrays written by orjson, float32 in their shortest form), gzipped."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: a gzip header
    return EncodedTokens(gzip=compressor.compress(body) + compressor.flush(),
                         etag=f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')


def cached_response(request: Request, cache: ResultCache, key: Hashable, payload: Callable[[], dict]) -> Response:
    """The encoded tokens for `key` (built by payload() on a miss), as a 304, gzip or plain response."""
    entry = cache.get_or_compute(key, lambda: encode(payload()))
    headers = {"ETag": entry.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if entry.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(entry.gzip, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(zlib.decompress(entry.gzip, 16 + zlib.MAX_WBITS), media_type="application/json", headers=headers)

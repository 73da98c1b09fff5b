"""API tokens: make one (its secret is returned once and never stored), list, revoke, and find the
live token a request's secret belongs to.

A secret is `fs_` + 32 random bytes (url-safe base64, 43 characters). The row keeps its first
PREFIX_CHARS characters, to find candidates and to tell tokens apart in listings, and the sha256 of
the whole secret, compared in constant time. A hash without salt is enough for a secret of 256 random
bits: nothing can be guessed from it that brute force could test."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.models.access import ApiToken
from app.services.errors import Conflict, InvalidInput, NotFound
from app.vocab import SCOPE_ADMIN, SCOPES

SECRET_MARK = "fs_"
SECRET_BYTES = 32
# "fs_" and 7 random characters: 42 bits, so that two tokens seldom share a prefix (they may: the hash decides).
PREFIX_CHARS = 10
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(*, session: Session, name: str, scope: str) -> NewToken:
    """A new token; its secret is in the result and nowhere else."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"a token name is 1 to {MAX_NAME_CHARS} characters")
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if name.isdigit():
        # `token revoke REF` takes an id or a name: a name that is a number would be ambiguous.
        raise InvalidInput(f"a token name must not be a number ({name!r})")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} exists already")
    secret = SECRET_MARK + secrets.token_urlsafe(SECRET_BYTES)
    token = ApiToken(name=name, scope=scope, prefix=secret[:PREFIX_CHARS], secret_sha256=secret_hash(secret))
    session.add(token)
    session.flush()
    return NewToken(token=token, secret=secret)


def list_tokens(*, session: Session) -> list[ApiToken]:
    """Every token, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(*, session: Session, ref: str) -> ApiToken:
    """Revoke the token with this id or name; revoking a revoked token is a no-op."""
    column = ApiToken.id if ref.isdigit() else ApiToken.name
    token = session.scalar(select(ApiToken).where(column == (int(ref) if ref.isdigit() else ref)))
    if token is None:
        raise NotFound(f"no token with id or name {ref!r}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def verify_token(*, session: Session, secret: str) -> ApiToken | None:
    """The live (not revoked) token whose secret this is, or None."""
    if not secret.startswith(SECRET_MARK) or len(secret) < PREFIX_CHARS:
        return None
    digest = secret_hash(secret)
    candidates = session.scalars(select(ApiToken).where(ApiToken.prefix == secret[:PREFIX_CHARS]))
    for token in candidates:
        if hmac.compare_digest(token.secret_sha256, digest) and token.revoked_at is None:
            return token
    return None


def has_admin_token(*, session: Session) -> bool:
    live_admins = select(func.count(ApiToken.id)).where(ApiToken.scope == SCOPE_ADMIN, ApiToken.revoked_at.is_(None))
    return bool(session.scalar(live_admins))

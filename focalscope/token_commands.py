"""`focalscope token create|list|revoke`: API tokens for a server that is not open (README "Security").
Tokens are made here, by whoever can reach the database, never over the API."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import writing_session
from app.services import tokens
from focalscope import console


def create(args: argparse.Namespace, sessions: sessionmaker[Session]) -> int:
    with writing_session(sessions) as session:
        made = tokens.create_token(session=session, name=args.name, scope=args.scope)
        session.commit()
        print(f"token {made.token.id} {made.token.name!r} (scope {made.token.scope}); its secret, shown only now:",
              file=sys.stderr)
        print(made.secret)
        print("send it as the header  Authorization: Bearer <secret>", file=sys.stderr)
    return 0


def list_(args: argparse.Namespace, sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        rows = [(t.id, t.name, t.scope, f"{t.prefix}…", f"{t.created_at:%Y-%m-%d %H:%M}",
                 f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
                for t in tokens.list_tokens(session=session)]
    print(console.table(("id", "name", "scope", "starts with", "created", "revoked"), rows))
    return 0


def revoke(args: argparse.Namespace, sessions: sessionmaker[Session]) -> int:
    with writing_session(sessions) as session:
        token = tokens.revoke_token(session=session, ref=args.ref)
        session.commit()
        print(f"token {token.id} {token.name!r} is revoked")
    return 0

"""Who is asking: the owner, or a contributor identified by an API token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from bedside.errors import AuthError
from bedside.store import schema
from bedside.workspace import Workspace, hash_token


@dataclass(frozen=True)
class Principal:
    role: str  # "owner" | "contributor"
    name: str
    contributor_id: int | None = None

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


OWNER = Principal(role="owner", name="owner")


def authenticate(ws: Workspace, token: str | None) -> Principal:
    """Map a bearer token to a principal, or raise AuthError."""
    if not token:
        raise AuthError("no API token given.", hint="Send `Authorization: Bearer TOKEN`.")
    if token.startswith("bso_") and ws.check_owner_token(token):
        return OWNER
    t = schema.contributors
    with ws.store.read() as conn:
        rows = conn.execute(select(t).where(t.c.token_prefix == token[:12])).mappings().all()
    for row in rows:
        if secrets.compare_digest(hash_token(token, row["token_salt"]), row["token_hash"]):
            if row["revoked"]:
                raise AuthError(
                    f"contributor {row['name']!r} has been revoked.", hint="Ask the data owner."
                )
            return Principal(role="contributor", name=row["name"], contributor_id=row["id"])
    raise AuthError(
        "this API token is not valid for this workspace.",
        hint="Check the token, or ask the owner for a new one.",
    )

"""Request dependencies: the workspace and who is asking.

A request authenticates with ``Authorization: Bearer TOKEN`` or, for pages and the progress
polling they do, with the ``bedside_session`` cookie set by the login form. The cookie holds
the API token itself (HttpOnly, SameSite=Strict, Secure over HTTPS): the server keeps no
session state, revoking a contributor ends their sessions at once, and SameSite=Strict keeps
other sites from sending it (no CSRF on the owner's POST forms).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bedside.auth import Principal, authenticate
from bedside.errors import AuthError, NotFoundError
from bedside.workspace import Workspace

COOKIE = "bedside_session"

bearer = HTTPBearer(
    auto_error=False, description="An owner (`bso_…`) or contributor (`bsc_…`) API token."
)


def get_ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def request_token(
    request: Request, creds: HTTPAuthorizationCredentials | None = None
) -> str | None:
    if creds is not None and creds.credentials:
        return creds.credentials
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def optional_principal(
    request: Request,
    ws: Annotated[Workspace, Depends(get_ws)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Principal | None:
    """The principal, or None when no token was sent (a bad token is still an error)."""
    token = request_token(request, creds)
    if token is None:
        return None
    return authenticate(ws, token)


def principal(p: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    """An authenticated principal (owner or contributor), else 401."""
    if p is None:
        raise AuthError(
            "no API token given.",
            hint="Send `Authorization: Bearer TOKEN` (or log in on the web page).",
        )
    return p


def owner(p: Annotated[Principal, Depends(principal)]) -> Principal:
    """Only the data owner. Others get 404, as if the owner-only resource did not exist."""
    if not p.is_owner:
        raise NotFoundError("no such resource.", hint="This part of bedside is for the data owner.")
    return p


WS = Annotated[Workspace, Depends(get_ws)]
Viewer = Annotated[Principal, Depends(principal)]
MaybeViewer = Annotated[Principal | None, Depends(optional_principal)]
Owner = Annotated[Principal, Depends(owner)]

"""Browser guards: the same-origin check, CSRF tokens on forms and the login rate limit.

``SameSite=Strict`` is site-scoped, not origin-scoped: a page on another port of the same host, or
on a sibling subdomain, is "same site" and its form POSTs carry the owner's cookie. So every
unsafe request (POST/PUT/PATCH/DELETE) that is not bearer-authenticated passes ``same_origin``
(one app-wide dependency):

- an ``Origin`` header must equal the server's own origin (``scheme://Host``);
- without ``Origin``, ``Sec-Fetch-Site`` must be ``same-origin``;
- with neither header, a request carrying a bedside cookie is refused (browsers send one of them;
  scripts authenticate with ``Authorization: Bearer TOKEN``, which no other origin can set).

Forms also carry a CSRF token (``check_form``, a dependency of the page routers):
``HMAC(app key, session)`` where the session is the login cookie, or before login a random
pre-session cookie; compared in constant time. The app key is random per server process, so a
restart asks for a reload of the page.

Login failures are counted per client address (``LoginLimiter``): after ``MAX_FAILURES`` within
``WINDOW_S`` seconds the login form answers 429 with ``Retry-After`` until the oldest failure ages
out. Every failure is written to the audit log.

Example::

    app = FastAPI(dependencies=[Depends(same_origin)])
    router = APIRouter(dependencies=[Depends(check_form)])
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response

from bedside.errors import ForbiddenError, LimitError

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_COOKIE = "bedside_session"  # the login cookie (deps.COOKIE)
PRESESSION_COOKIE = "bedside_presession"
FIELD = "csrf_token"
MAX_FAILURES = 5
WINDOW_S = 60.0
MAX_CLIENTS = 10_000  # addresses remembered at once; the oldest are forgotten first


class LoginRateLimited(LimitError):
    """Too many failed logins from one address; ``retry_after`` is in whole seconds."""

    code = "login_rate_limited"

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


def _bearer(request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def own_origin(request: Request) -> str:
    """``scheme://host[:port]`` as the browser addressed this server (the ``Host`` header)."""
    host = request.headers.get("host") or (
        f"{request.url.hostname}:{request.url.port}" if request.url.port else request.url.hostname
    )
    return f"{request.url.scheme}://{host}".lower()


def same_origin(request: Request) -> None:
    """Refuse unsafe, cookie-capable requests from another origin (403)."""
    if request.method not in UNSAFE or _bearer(request):
        return
    own = own_origin(request)
    allowed = {own, *getattr(request.app.state, "extra_origins", ())}
    origin = request.headers.get("origin")
    hint = (
        "Submit the form from bedside's own pages (reload the page first), or call the API with "
        "`Authorization: Bearer TOKEN` instead of the login cookie."
    )
    if origin is not None:
        if origin.lower().rstrip("/") in allowed:
            return
        raise ForbiddenError(
            f"expected a request from this server's origin {own}, got one from {origin!r}.",
            hint=hint,
        )
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site.lower() == "same-origin":
            return
        raise ForbiddenError(
            f"expected a same-origin request, got Sec-Fetch-Site: {site!r}.", hint=hint
        )
    if SESSION_COOKIE in request.cookies or PRESESSION_COOKIE in request.cookies:
        raise ForbiddenError(
            "a request with the login cookie must say where it comes from "
            "(an Origin or Sec-Fetch-Site header); this one has neither.",
            hint=hint,
        )


# -- CSRF tokens -----------------------------------------------------------------------------
def _key(request: Request) -> bytes:
    key: bytes = request.app.state.csrf_key
    return key


def _session(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE) or None


def _token_for(key: bytes, session: str) -> str:
    return hmac.new(key, b"csrf\0" + session.encode(), hashlib.sha256).hexdigest()


def form_token(request: Request) -> tuple[str, str | None]:
    """The form token for this request's session, and a new pre-session cookie value to set
    (None when the request already has a session)."""
    session = _session(request)
    fresh = None
    if session is None:
        session = fresh = secrets.token_urlsafe(24)
    return _token_for(_key(request), session), fresh


def set_presession(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        PRESESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


async def check_form(request: Request) -> None:
    """Refuse an unsafe form request whose CSRF token is missing or wrong (403)."""
    if request.method not in UNSAFE or _bearer(request):
        return
    hint = "Reload the page and submit the form again (tokens end with the session or a restart)."
    session = _session(request)
    if session is None:
        raise ForbiddenError(
            "expected a form sent from a bedside page (with its session cookie), got none.",
            hint=hint,
        )
    try:
        form = await request.form()
    except Exception:  # an unparsable body is refused like a missing token
        form = None
    sent = form.get(FIELD) if form is not None else None
    expected = _token_for(_key(request), session)
    if not isinstance(sent, str) or not sent:
        raise ForbiddenError("the form has no CSRF token.", hint=hint)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ForbiddenError("the form's CSRF token does not match this session.", hint=hint)


# -- login rate limit ------------------------------------------------------------------------
class LoginLimiter:
    """Failed logins per client address in a sliding window (in memory, bounded)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        now = self.clock()
        q = self._fails.get(client)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._fails[client]
        return q

    def check(self, client: str) -> None:
        """Raise ``LoginRateLimited`` while ``client`` has too many recent failures."""
        q = self._recent(client)
        if len(q) >= self.max_failures:
            wait = max(1, int(q[0] + self.window_s - self.clock() + 0.999))
            raise LoginRateLimited(
                f"too many failed logins from {client}: {len(q)} in the last "
                f"{self.window_s:.0f} s (at most {self.max_failures}).",
                retry_after=wait,
                hint=f"Wait {wait} s and paste the token again; check that it is the whole token.",
            )

    def failed(self, client: str) -> int:
        """Count a failure; returns the failures now in the window."""
        q = self._recent(client)
        q.append(self.clock())
        self._fails[client] = q
        self._fails.move_to_end(client)
        while len(self._fails) > self.max_clients:
            self._fails.popitem(last=False)
        return len(q)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def install(app: Any, *, origins: tuple[str, ...] = ()) -> None:
    """Give ``app`` its guard state: the CSRF key, extra trusted origins, the login limiter."""
    app.state.csrf_key = secrets.token_bytes(32)
    app.state.extra_origins = tuple(o.lower().rstrip("/") for o in origins)
    app.state.login_limiter = LoginLimiter()

"""How uvicorn serves bedside: bounded headers, header and body timeouts, bounded concurrency.

uvicorn's own ``timeout_keep_alive`` only runs between requests and stops at the first byte, so a
client that sends its request head one byte at a time (slowloris) would hold a connection for
ever. ``HeadTimeoutH11`` closes a connection whose request head is not complete ``HEAD_TIMEOUT_S``
after the connection opened (or after the previous response); ``BodyTimeout`` answers 408 when the
client sends no body bytes for ``BODY_IDLE_S`` (a bundle upload on a slow link keeps going as long
as bytes arrive). ``h11_max_incomplete_event_size`` caps the request head (400 beyond it) and
``limit_concurrency`` answers 503 past that many connections.

Example::

    uvicorn.Server(server_config(create_app(ws), "127.0.0.1", 8000)).run()
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 10.0
BODY_IDLE_S = 30.0
KEEP_ALIVE_S = 5
MAX_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 64


class HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head."""

    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head()

    def _arm_head(self) -> None:
        self._disarm_head()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_expired)

    def _disarm_head(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the head arrived (body or done follows)
            self._disarm_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)


class BodyTimeout:
    """ASGI middleware: 408 when the request body stalls for ``idle_s`` seconds."""

    def __init__(self, app: Any, idle_s: float = BODY_IDLE_S) -> None:
        self.app = app
        self.idle_s = idle_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"started": False, "stalled": False}

        async def timed_receive() -> Any:
            try:
                return await asyncio.wait_for(receive(), timeout=self.idle_s)
            except TimeoutError:
                if not state["started"]:
                    await send_timeout()
                state["stalled"] = True
                return {"type": "http.disconnect"}  # the app unwinds as if the client left

        async def guarded_send(message: Any) -> None:
            if state["stalled"]:
                return  # the 408 went out already
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        async def send_timeout() -> None:
            body = json.dumps(
                {
                    "error": {
                        "code": "request_timeout",
                        "message": f"the request body stalled for more than {self.idle_s:g} s.",
                        "hint": "Send the request again on a steadier connection.",
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 408,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not state["stalled"]:
                raise


def server_config(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    head_timeout_s: float = HEAD_TIMEOUT_S,
    body_idle_s: float = BODY_IDLE_S,
    log_level: str = "info",
) -> Any:
    """The uvicorn ``Config`` bedside runs with (``serve`` and the browser tests)."""
    import uvicorn

    protocol = type("HeadTimeoutH11", (HeadTimeoutH11,), {"head_timeout_s": head_timeout_s})
    return uvicorn.Config(
        BodyTimeout(app, idle_s=body_idle_s),
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
        backlog=128,
        timeout_graceful_shutdown=10,
        server_header=False,
    )

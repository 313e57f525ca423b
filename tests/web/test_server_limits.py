"""uvicorn as bedside runs it: a slow request head is cut off, a huge one refused, a stalled
body answered 408 (``bedside.web.server``)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.web.webdata import Populated


@pytest.fixture
def live(pop: Populated) -> Iterator[int]:
    import uvicorn

    from bedside.web.app import create_app
    from bedside.web.server import server_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cfg = server_config(
        create_app(pop.ws),
        "127.0.0.1",
        port,
        head_timeout_s=0.5,
        body_idle_s=0.5,
        log_level="warning",
    )
    srv = uvicorn.Server(cfg)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def _talk(port: int, data: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<still open>")
        return b"".join(chunks)


def test_slow_head_is_cut_off(live: int) -> None:
    t0 = time.monotonic()
    assert _talk(live, b"GET /api/health HTTP/1.1\r\nHost: x\r\n") == b""  # closed, no answer
    assert time.monotonic() - t0 < 2.5
    ok = _talk(live, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")


def test_huge_head_is_refused(live: int) -> None:
    # the cap bounds what is buffered while a head is incomplete: send 40 KB without its end
    with socket.create_connection(("127.0.0.1", live), timeout=3) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            s.sendall(b"\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 400")


def test_stalled_body_gets_408(live: int) -> None:
    req = (
        b"POST /api/contributors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bso_x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    out = _talk(live, req)
    assert out.startswith(b"HTTP/1.1 408") and b"request_timeout" in out

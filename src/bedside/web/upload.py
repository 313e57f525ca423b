"""Receive a bundle upload: stream the multipart body to disk in chunks, refusing it past a limit.

The body is never held in memory and never spooled by the framework first: chunks go from the
socket through the multipart parser straight into a file, and the upload stops (413) as soon as
the byte count passes the limit, whatever ``Content-Length`` claimed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fastapi import Request

from bedside.errors import BundleError

FIELD = "bundle"
SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class UploadTooLarge(BundleError):
    """The upload is bigger than the workspace allows."""

    code = "upload_too_large"
    http_status = 413


@dataclass
class Upload:
    path: Path
    filename: str
    size: int


def _suffix(filename: str) -> str:
    low = filename.lower()
    for s in SUFFIXES:
        if low.endswith(s):
            return s
    raise BundleError(
        f"expected a bundle archive ({', '.join(SUFFIXES)}), got {filename!r}.",
        hint="Pack the bundle with `bedside check DIR --pack` or `tar czf bundle.tar.gz -C DIR .`.",
    )


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the upload is larger than this workspace accepts ({limit / 2**20:.1f} MiB).",
        hint="Make the bundle smaller (e.g. drop optimizer states), or ask the owner to raise max_bundle_mb.",
    )


async def receive_bundle(request: Request, dest_dir: Path, limit: int) -> Upload:
    """Stream the ``bundle`` file part of a multipart request into ``dest_dir``."""
    from python_multipart.multipart import (
        MultipartParseError,
        MultipartParser,
        parse_options_header,
    )

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    ctype, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BundleError(
            f"expected a multipart/form-data upload, got {ctype.decode() or 'no content type'!r}.",
            hint=f"Send the archive as the form field {FIELD!r}: curl -F {FIELD}=@bundle.tar.gz …",
        )
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "file": None, "name": None}
    found: list[Upload] = []
    written = {"n": 0}

    def on_part_begin() -> None:
        state["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _disp, opts = parse_options_header(state["headers"].get("content-disposition", b""))
        name = opts.get(b"name", b"").decode()
        filename = opts.get(b"filename")
        if name != FIELD or filename is None or found:
            state["file"] = None
            return
        clean = (
            re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename.decode("utf-8", "replace")).name)
            or "bundle"
        )
        path = dest_dir / f"{secrets.token_hex(8)}{_suffix(clean)}"
        fh: IO[bytes] = path.open("xb")
        path.chmod(0o600)
        state["file"] = fh
        found.append(Upload(path=path, filename=clean, size=0))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        fh = state["file"]
        if fh is not None:
            fh.write(data[start:end])
            written["n"] += end - start

    def on_part_end() -> None:
        fh = state["file"]
        if fh is not None:
            fh.close()
            state["file"] = None

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },  # type: ignore[arg-type]
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except BaseException as e:
        if state["file"] is not None:
            state["file"].close()
        for up in found:
            up.path.unlink(missing_ok=True)
        if isinstance(e, MultipartParseError):
            raise BundleError(f"the multipart upload is malformed: {e}.") from e
        raise
    if not found:
        raise BundleError(
            f"the upload has no file in the form field {FIELD!r}.",
            hint=f"Send the archive as the form field {FIELD!r}: curl -F {FIELD}=@bundle.tar.gz …",
        )
    found[0].size = written["n"]
    return found[0]

"""Reading untrusted bytes: size checked before parsing, every failure a ``BedsideError``.

Corpus files, bundle files (JSON configs, tokenizer files, ``bedside.toml``, safetensors headers)
and HTTP inputs all come through these helpers, so that a hostile file cannot turn into a
traceback, a 500 or a gigabyte of memory:

* :func:`read_bounded` opens without blocking (a FIFO never hangs the reader), checks that it is a
  regular file, checks the size on the open file *before* reading, and reads at most the limit;
* :func:`parse_json` / :func:`parse_toml` map ``RecursionError``, over-long integers and decode
  errors into the caller's error class, and refuse nesting deeper than ``max_depth``;
* :func:`safe_int` turns a digit string into an int without Python's 4300-digit ``ValueError``.

Example::

    data = read_bounded(root / "config.json", 4 * 2**20, "config.json", BundleError)
    cfg = parse_json(data, "config.json", BundleError)
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from bedside.errors import BedsideError

MAX_DEPTH = 64  # real configs, tokenizers and corpus rows nest a handful of levels
MAX_INT_DIGITS = 40  # beyond any count, id or size a real file holds (2**128 has 39 digits)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def read_bounded(
    path: Path,
    limit: int,
    what: str,
    error: type[BedsideError],
    *,
    follow_links: bool = True,
    hint: str | None = None,
) -> bytes:
    """The bytes of regular file ``path``, refused (``error``) when it is larger than ``limit``.

    The size is checked on the open file before anything is read, and at most ``limit + 1`` bytes
    are read, so a file that grows while being read is refused too.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what}: file not found ({path}).") from None
    except PermissionError:
        raise error(
            f"cannot read {what}: permission denied.", hint="Check its permissions."
        ) from None
    except OSError as e:  # ELOOP (a link with follow_links=False), EISDIR, ...
        raise error(f"cannot open {what} as a regular file: {e.strerror}.") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} is not a regular file (a directory, FIFO, device or socket).")
        if st.st_size > limit:
            raise error(
                f"{what} is {_mb(st.st_size)}, over the limit of {_mb(limit)}; refused before reading.",
                hint=hint,
            )
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} grew past the limit of {_mb(limit)} while being read; refused.")
    return data


def depth_exceeds(obj: Any, max_depth: int) -> bool:
    """Whether ``obj`` (parsed JSON/TOML) nests dicts/lists deeper than ``max_depth`` (no recursion)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def _bounded_int(what: str, error: type[BedsideError]) -> Any:
    def parse(s: str) -> int:
        if len(s.lstrip("-")) > MAX_INT_DIGITS:
            raise error(
                f"{what} holds an integer with {len(s.lstrip('-'))} digits; at most "
                f"{MAX_INT_DIGITS} are accepted.",
                hint="Write the number as a float or a string, or fix the file.",
            )
        return int(s)

    return parse


def parse_json(
    data: bytes | str,
    what: str,
    error: type[BedsideError],
    *,
    max_depth: int = MAX_DEPTH,
    hint: str | None = None,
    verb: str = " is",
) -> Any:
    """Parse JSON text (UTF-8 bytes or str); every failure is ``error`` naming ``what``.

    Messages read ``{what}{verb} not valid JSON (...)``.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (byte {e.start}).", hint=hint) from None
    try:
        obj = json.loads(text, parse_int=_bounded_int(what, error))
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}" if e.lineno > 1 else f"column {e.colno}"
        raise error(f"{what}{verb} not valid JSON ({e.msg} at {where}).", hint=hint) from None
    except RecursionError:
        raise error(f"{what} nests deeper than {max_depth} levels; refused.", hint=hint) from None
    except ValueError as e:  # e.g. an over-long number Python refuses to convert
        raise error(f"{what}{verb} not valid JSON ({str(e)[:120]}).", hint=hint) from None
    if depth_exceeds(obj, max_depth):
        raise error(f"{what} nests deeper than {max_depth} levels; refused.", hint=hint)
    return obj


def _ints_ok(obj: Any) -> bool:
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 2**63:
            return False
    return True


def parse_toml(
    text: str,
    what: str,
    error: type[BedsideError],
    *,
    max_depth: int = MAX_DEPTH,
    hint: str | None = None,
) -> dict[str, Any]:
    """Parse TOML text; every failure (syntax, nesting, 64-bit integer range) is ``error``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what} is not valid TOML: {e}.", hint=hint) from None
    except RecursionError:
        raise error(f"{what} nests deeper than {max_depth} levels; refused.", hint=hint) from None
    except ValueError as e:  # an integer too long for Python to convert
        raise error(f"{what} is not valid TOML: {str(e)[:120]}.", hint=hint) from None
    if depth_exceeds(data, max_depth):
        raise error(f"{what} nests deeper than {max_depth} levels; refused.", hint=hint)
    if not _ints_ok(data):
        raise error(f"{what} holds an integer outside the 64-bit range TOML allows.", hint=hint)
    return data


def safe_int(text: str) -> int | None:
    """``int(text)`` for a short digit string, else None (no 4300-digit ``ValueError``)."""
    s = text.strip()
    if len(s.lstrip("+-")) > MAX_INT_DIGITS:
        return None
    try:
        return int(s)
    except ValueError:
        return None


def has_control(text: str, allow: str = "") -> bool:
    """True when ``text`` holds C0/C1 control characters (escapes, newlines) other than ``allow``.

    >>> has_control("bundle\x1b[2J"), has_control("a\tb", allow="\t")
    (True, False)
    """
    return any((ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) and ch not in allow for ch in text)

"""Reading what a job wrote: the one module on the host that opens a job's ``out/`` and
``checkpoints/``.

A job controls every byte under those two directories, including what kind of file each entry
is. So nothing here follows a link or trusts a name:

- ``inspect`` walks a tree with ``lstat`` and accepts directories and regular files with one
  link only; a symlink, FIFO, socket, device or hard link is an ``invalid_output`` failure.
- ``footprint`` is the quota's measure: file blocks, directory blocks, and at least
  ``ENTRY_BYTES`` per entry, so tens of thousands of empty files or directories cannot pass a
  small quota.
- ``read_bytes`` opens every path component with ``O_NOFOLLOW`` relative to the directory
  before it (so no component can be swapped for a link), the file itself with
  ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO cannot block the reader), checks ``S_ISREG`` and the link
  count on the open descriptor, and never reads more than its bound.
- ``seal`` gives a finished job's directories back to the host user (no sandbox uid can write
  them again) before anything is read.

Example::

    check_tree(job_dir / "out", quota_bytes=64 * 2**20)     # JobError(invalid_output) if unsafe
    raw = read_bytes(job_dir / "out", "predictions.json", max_bytes=cap)
    compute = read_compute(job_dir / "out")                   # contracts.Compute, never raises
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.contracts import Compute
from bedside.errors import JobError

ENTRY_BYTES = 4096  # what an inode and its directory entry cost, at the least
MAX_JSON_BYTES = 65536  # compute.json, error.json
MAX_PROGRESS_LINE = 4096
PROGRESS_CHUNK = 1 << 20
INVALID = "invalid_output"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "an unknown file type"


def _refused(rel: str, found: str) -> JobError:
    return JobError(
        f"job output {rel!r} is {found}; expected regular files and directories only.",
        error_class=INVALID,
        hint="A job writes plain files under out/ and checkpoints/ (no links, FIFOs or devices).",
    )


def _entry_problem(st: os.stat_result) -> str | None:
    """Why an entry is not acceptable, or None."""
    if stat.S_ISDIR(st.st_mode):
        return None
    if not stat.S_ISREG(st.st_mode):
        return _kind(st.st_mode)
    if st.st_nlink != 1:
        return f"a hard link ({st.st_nlink} names for one file)"
    return None


@dataclass
class Inspection:
    """What ``inspect`` saw: entries, bytes charged (see ``footprint``), refused entries."""

    entries: int = 0
    charged: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    truncated: bool = False  # stopped early: past ``cap``


def inspect(root: Path, cap: int | None = None) -> Inspection:
    """Walk ``root`` with ``lstat`` (never following anything); stops once ``charged > cap``."""
    res = Inspection()
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return res
    res.charged += max(st.st_blocks * 512, ENTRY_BYTES)
    if not stat.S_ISDIR(st.st_mode):
        res.refused.append((".", _kind(st.st_mode)))
        return res
    stack = [(root, "")]
    while stack:
        d, prefix = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                rel = f"{prefix}{e.name}"
                try:
                    est = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                res.entries += 1
                res.charged += max(est.st_blocks * 512, ENTRY_BYTES)
                problem = _entry_problem(est)
                if problem is not None:
                    res.refused.append((rel, problem))
                elif stat.S_ISDIR(est.st_mode):
                    stack.append((Path(e.path), rel + "/"))
                if cap is not None and res.charged > cap:
                    res.truncated = True
                    return res
    return res


def footprint(root: Path, cap: int) -> int:
    """Bytes ``root`` is charged for in the output quota (stops counting past ``cap``)."""
    return inspect(root, cap).charged


def check_tree(root: Path, quota_bytes: int) -> Inspection:
    """Refuse a tree with anything but directories and single-link regular files, or over its
    quota, with ``JobError(invalid_output)`` naming the first offending entry."""
    res = inspect(root, quota_bytes)
    name = root.name
    if res.refused:
        rel, found = res.refused[0]
        raise _refused(f"{name}/{rel}" if rel != "." else name, found)
    if res.truncated:
        raise JobError(
            f"the job's {name}/ holds more than its quota of {quota_bytes:,} bytes (counting "
            f"{ENTRY_BYTES} bytes at least per file or directory).",
            error_class=INVALID,
            hint="Write fewer, larger files; the quota counts entries as well as bytes.",
        )
    return res


def _open_dir(root: Path, parts: list[str]) -> int:
    fd = os.open(root, _DIR_FLAGS)
    try:
        for p in parts:
            nxt = os.open(p, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_file(root: Path, rel: str) -> int:
    """A read-only descriptor on the regular file ``root/rel``; ``JobError`` for anything else,
    ``FileNotFoundError`` when it is missing."""
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"a plain relative path is expected, got {rel!r}")
    try:
        dfd = _open_dir(root, parts[:-1])
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refused(rel, "reached through a link or a non-directory") from e
        raise
    try:
        st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        if (problem := _entry_problem(st)) is not None or stat.S_ISDIR(st.st_mode):
            raise _refused(rel, problem or "a directory")
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refused(rel, "a symbolic link") from e
            raise
    finally:
        os.close(dfd)
    st = os.fstat(fd)  # the entry may have been swapped between stat and open
    if (problem := _entry_problem(st)) is not None or not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _refused(rel, problem or _kind(st.st_mode))
    return fd


def read_bytes(
    root: Path, rel: str, max_bytes: int, *, offset: int = 0, whole: bool = True
) -> bytes:
    """The regular file ``root/rel`` (``whole``: all of it, refused when over ``max_bytes``;
    else at most ``max_bytes`` from ``offset``). Raises ``JobError(invalid_output)`` for a link,
    FIFO, device, hard link or an oversized file, ``FileNotFoundError`` when it is missing."""
    fd = _open_file(root, rel)
    try:
        size = os.fstat(fd).st_size
        if whole and size > max_bytes:
            raise JobError(
                f"job output {rel!r} is {size:,} bytes; expected at most {max_bytes:,}.",
                error_class=INVALID,
            )
        chunks, left, pos = [], max_bytes + 1, offset
        while left > 0:
            b = os.pread(fd, min(left, 1 << 20), pos)
            if not b:
                break
            chunks.append(b)
            left -= len(b)
            pos += len(b)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if whole and len(data) > max_bytes:  # it grew after fstat
        raise JobError(f"job output {rel!r} grew past {max_bytes:,} bytes.", error_class=INVALID)
    return data[:max_bytes]


def read_tail(root: Path, rel: str, n: int) -> str | None:
    """The last ``n`` bytes of ``root/rel`` as text, or None when missing or not acceptable
    (for display: a link or FIFO is never followed, it just shows nothing)."""
    try:
        fd = _open_file(root, rel)
    except (OSError, JobError, ValueError):
        return None
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, n, max(0, size - n))
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def read_json(root: Path, rel: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A small JSON file a job wrote, or None when missing, unacceptable or not JSON."""
    try:
        return json.loads(read_bytes(root, rel, max_bytes))
    except (OSError, JobError, ValueError, RecursionError):
        return None


def read_compute(out_dir: Path) -> Compute:
    """``out/compute.json`` as a ``Compute`` (empty when missing or unacceptable)."""
    return Compute.from_untrusted(read_json(out_dir, "compute.json"))


def reported_error_class(out_dir: Path) -> str | None:
    """The ``error_class`` a job put in ``out/error.json``, if it is a string."""
    doc = read_json(out_dir, "error.json")
    val = doc.get("error_class") if isinstance(doc, dict) else None
    return val if isinstance(val, str) else None


class ProgressTail:
    """New complete lines of ``out/progress.jsonl`` since the last call, as JSON values (the
    caller cleans them). Reads at most ``PROGRESS_CHUNK`` a call; never follows a link or
    blocks on a FIFO."""

    def __init__(self, out_dir: Path, name: str = "progress.jsonl") -> None:
        self.out_dir, self.name = out_dir, name
        self.offset = 0

    def read(self) -> list[Any]:
        try:
            data = read_bytes(
                self.out_dir, self.name, PROGRESS_CHUNK, offset=self.offset, whole=False
            )
        except (OSError, JobError, ValueError):
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        recs = []
        for line in data[: end + 1].splitlines():
            if len(line) > MAX_PROGRESS_LINE:
                continue
            with contextlib.suppress(ValueError, RecursionError):
                recs.append(json.loads(line))
        return recs


def seal(*dirs: Path) -> None:
    """Give finished job directories back to the host user (lchown, never following links), so
    that no later job running as the sandbox uid can write or replace anything in them."""
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        return  # without root the sandbox ran as this user anyway (tier C and below)
    for d in dirs:
        with contextlib.suppress(OSError):
            os.chown(d, uid, gid, follow_symlinks=False)
            os.chmod(d, 0o755)
        for root, subdirs, files in os.walk(d):  # os.walk does not descend into links
            for n in subdirs + files:
                with contextlib.suppress(OSError):
                    os.chown(os.path.join(root, n), uid, gid, follow_symlinks=False)

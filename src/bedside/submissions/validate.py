"""Intake validation of a model bundle, without loading weights or running vendor code.

Order of the checks (the first failure is reported, naming the file and what to do):

1. safe unpacking and the file allowlist (``bundle.py``)
2. every JSON file: parses, and holds no ``auto_map`` / ``trust_remote_code`` key at any depth
3. ``bedside.toml`` (``manifest.py``)
4. ``config.json``: a ``model_type`` transformers implements natively
5. safetensors headers (``weights.py``) and their agreement with config.json
   (embedding rows = vocab_size, embedding width = hidden size, number of layers)
6. the tokenizer: present, loads offline with ``tokenizers``, vocabulary <= embedding rows;
   a chat template renders a probe in Jinja's sandbox within limits (``templates.py``)
7. ``kind`` against the checkpoint (classification head and labels, decoder for causal-lm)
   and, with a workspace, the labels against the workspace classes

Example::

    report = validate_bundle(Path("bundle.tar.gz"), classes=["neoplasms", ...])
    report.n_params, report.content_hash, report.warnings
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.errors import BundleError
from bedside.parsing import parse_json, read_bounded
from bedside.submissions.bundle import (
    BundleFile,
    BundleLimits,
    content_hash,
    opened_bundle,
    scan_files,
)
from bedside.submissions.manifest import Manifest, load_manifest
from bedside.submissions.weights import WeightsInfo, inspect_weights

ENCODER_TYPES = (
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "deberta",
    "deberta-v2",
    "electra",
    "mpnet",
    "albert",
    "modernbert",
)
DECODER_TYPES = (
    "llama",
    "qwen2",
    "qwen3",
    "mistral",
    "gpt2",
    "gpt_neox",
    "phi",
    "phi3",
    "gemma",
    "gemma2",
    "smollm3",
)
MODEL_TYPES = ENCODER_TYPES + DECODER_TYPES
FORBIDDEN_KEYS = ("auto_map", "trust_remote_code")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model")
EMBEDDING_SUFFIXES = (
    "word_embeddings.weight",
    "embed_tokens.weight",
    "wte.weight",
    "embed_in.weight",
    "tok_embeddings.weight",
)
_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers|h|blocks)\.(\d+)\.")
MAX_TOKENIZER_BYTES = 64 * 1024 * 1024  # the largest real tokenizer.json files are ~35 MB
MAX_JSON_BYTES = 16 * 1024 * 1024  # every other JSON file (configs, vocab.json, the index)


@dataclass
class BundleReport:
    """What intake found out about a bundle."""

    root: Path  # valid only while the bundle is open (archives unpack to a temporary directory)
    manifest: Manifest
    files: list[BundleFile]
    content_hash: str
    model_type: str
    architectures: list[str]
    weights: WeightsInfo
    hidden_size: int | None
    vocab_size: int | None
    n_layers: int | None
    tokenizer_vocab: int | None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_params(self) -> int:
        return self.weights.n_params

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.manifest.name,
            "kind": self.manifest.kind,
            "content_hash": self.content_hash,
            "model_type": self.model_type,
            "architectures": self.architectures,
            "n_params": self.n_params,
            "dtypes": self.weights.dtypes,
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "n_layers": self.n_layers,
            "tokenizer_vocab": self.tokenizer_vocab,
            "files": [{"path": f.path, "size": f.size} for f in self.files],
            "total_bytes": self.total_bytes,
            "manifest": self.manifest.to_dict(),
            "warnings": list(self.warnings),
        }


# -- JSON configs -----------------------------------------------------------------------------
def _find_forbidden(obj: Any, path: str) -> str | None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            here = f"{path}.{k}" if path else str(k)
            if k in FORBIDDEN_KEYS:
                return here
            found = _find_forbidden(v, here)
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = _find_forbidden(v, f"{path}[{i}]")
            if found:
                return found
    return None


def json_limit(rel: str) -> int:
    return MAX_TOKENIZER_BYTES if rel == "tokenizer.json" else MAX_JSON_BYTES


def load_json(root: Path, rel: str) -> Any:
    """Parse a bundle JSON file; its size is checked before it is read."""
    data = read_bounded(
        root / rel,
        json_limit(rel),
        rel,
        BundleError,
        follow_links=False,
        hint="Ship the files save_pretrained writes; they are far smaller.",
    )
    return parse_json(data, rel, BundleError, hint="Re-save it with save_pretrained.")


def check_json_files(root: Path, files: Sequence[BundleFile]) -> dict[str, Any]:
    """Parse every JSON file; refuse ``auto_map`` / ``trust_remote_code`` at any depth.
    Returns the parsed files (by relative path)."""
    parsed: dict[str, Any] = {}
    for f in files:
        if not f.path.endswith(".json"):
            continue
        data = load_json(root, f.path)
        parsed[f.path] = data
        scan = data
        if f.path == "vocab.json":
            continue  # a token -> id table: its keys are tokens, not settings
        if f.path == "tokenizer.json" and isinstance(data, dict):
            scan = {k: v for k, v in data.items() if k not in ("model", "added_tokens")}
        where = _find_forbidden(scan, "")
        if where:
            key = where.rsplit(".", 1)[-1].split("[")[0]
            raise BundleError(
                f"{f.path}: found {key!r} (at {where}); bundles that need custom code are refused — "
                "bedside loads only architectures that transformers implements natively and never "
                "runs code from a bundle.",
                hint=f"Remove {key!r} and use a standard architecture ({', '.join(MODEL_TYPES)}).",
            )
    return parsed


# -- config.json against the weights --------------------------------------------------------------
def _first_int(cfg: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _embedding_tensor(info: WeightsInfo) -> tuple[str, tuple[int, ...]] | None:
    names = sorted((n for n in info.tensors if n.endswith(EMBEDDING_SUFFIXES)), key=len)
    for n in names:
        if "position" not in n and "token_type" not in n and len(info.tensors[n].shape) == 2:
            return n, info.tensors[n].shape
    return None


def check_config_vs_weights(
    cfg: dict[str, Any], info: WeightsInfo, warnings: list[str]
) -> tuple[int | None, int | None, int | None, int]:
    """Returns (hidden_size, vocab_size, n_layers, embedding_rows)."""
    model_type = cfg["model_type"]
    hidden = _first_int(cfg, "hidden_size", "d_model", "n_embd", "dim")
    emb_dim = _first_int(cfg, "embedding_size") or hidden
    vocab = _first_int(cfg, "vocab_size")
    layers = _first_int(cfg, "num_hidden_layers", "n_layer", "n_layers", "num_layers")
    emb = _embedding_tensor(info)
    if emb is None:
        raise BundleError(
            "the weights hold no token-embedding matrix (looked for a 2-D tensor named "
            f"*{', *'.join(EMBEDDING_SUFFIXES)}); the checkpoint does not match model_type {model_type!r}.",
            hint="Save the full model with save_pretrained, not a partial state dict.",
        )
    ename, (rows, width) = emb
    if emb_dim is None or vocab is None:
        raise BundleError("config.json must give hidden_size (or its equivalent) and vocab_size.")
    if width != emb_dim:
        raise BundleError(
            f"config.json says the hidden size is {emb_dim}, but the embedding matrix {ename} "
            f"has shape {list(emb[1])}; the config and the weights belong to different models.",
            hint="Ship the config.json that was saved together with these weights.",
        )
    if rows != vocab:
        raise BundleError(
            f"config.json says vocab_size = {vocab}, but the embedding matrix {ename} has {rows} rows; "
            "the config and the weights belong to different models.",
            hint="Ship the config.json saved with these weights (after resize_token_embeddings, if any).",
        )
    found = {int(m.group(1)) for n in info.tensors if (m := _LAYER_RE.search(n))}
    if layers is not None and found:
        if len(found) != layers or max(found) != layers - 1:
            raise BundleError(
                f"config.json says num_hidden_layers = {layers}, but the weights hold {len(found)} "
                f"layer(s) (indices {min(found)}..{max(found)}); the checkpoint is incomplete or mismatched.",
                hint="Ship the config.json saved together with these weights.",
            )
    elif model_type != "albert":  # albert shares one layer group across depth
        warnings.append(
            "could not count the transformer layers from the tensor names; not checked."
        )
    return hidden, vocab, layers, rows


# -- tokenizer -------------------------------------------------------------------------------------
def check_tokenizer(
    root: Path, names: set[str], parsed: dict[str, Any], embedding_rows: int, warnings: list[str]
) -> int | None:
    """Check that a tokenizer is present and loads offline; return its vocabulary size."""
    if not names & set(TOKENIZER_FILES):
        raise BundleError(
            "the bundle has no tokenizer: expected tokenizer.json (or vocab.txt, vocab.json + merges.txt, "
            "or tokenizer.model).",
            hint="Save it next to the model with tokenizer.save_pretrained(dir).",
        )
    size: int | None = None
    if "tokenizer.json" in names:  # already parsed (size-capped) by check_json_files
        from tokenizers import Tokenizer  # only here: the CLI must start without it

        try:
            tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        except Exception as e:  # tokenizers raises plain Exception subclasses
            raise BundleError(
                f"tokenizer.json does not load with the tokenizers library: {str(e)[:300]}.",
                hint="Re-save it with tokenizer.save_pretrained(dir) using a recent transformers.",
            ) from e
        size = tok.get_vocab_size(with_added_tokens=True)
    elif "vocab.txt" in names:
        size = sum(1 for _ in (root / "vocab.txt").open(encoding="utf-8", errors="replace"))
    elif "vocab.json" in names:
        vocab = parsed.get("vocab.json")
        if not isinstance(vocab, dict):
            raise BundleError("vocab.json must be a JSON object of token -> id.")
        if "merges.txt" not in names:
            raise BundleError(
                "vocab.json needs merges.txt beside it (a BPE tokenizer); merges.txt is missing."
            )
        size = len(vocab)
    else:
        warnings.append(
            "tokenizer.model (sentencepiece) is present; its vocabulary size is not checked at intake."
        )
    added = parsed.get("added_tokens.json")
    if size is not None and isinstance(added, dict) and "tokenizer.json" not in names:
        size = max(size, max((v for v in added.values() if isinstance(v, int)), default=-1) + 1)
    if size is not None and size > embedding_rows:
        raise BundleError(
            f"the tokenizer has {size} tokens but the embedding matrix has only {embedding_rows} rows; "
            "token ids past the end would crash or be mis-read.",
            hint="Call model.resize_token_embeddings(len(tokenizer)) before saving, or ship the matching tokenizer.",
        )
    return size


# -- chat template ---------------------------------------------------------------------------------
def check_chat_template(root: Path, names: set[str], parsed: dict[str, Any]) -> None:
    """A chat template (data, not code to run) must render a probe conversation inside Jinja's
    sandbox, in a limited child process (``templates.py``)."""
    from bedside.submissions.templates import check_template, find_template

    found = find_template(root, names, parsed)
    if found is not None:
        check_template(*found)


# -- kind ------------------------------------------------------------------------------------------
def check_kind(
    m: Manifest,
    cfg: dict[str, Any],
    info: WeightsInfo,
    classes: Sequence[str] | None,
    warnings: list[str],
) -> None:
    archs = [a for a in cfg.get("architectures") or [] if isinstance(a, str)]
    model_type = cfg["model_type"]
    if m.kind == "classifier":
        id2label = cfg.get("id2label")
        if not isinstance(id2label, dict) or not id2label:
            raise BundleError(
                'kind = "classifier" but config.json has no id2label; a classifier bundle needs its '
                "label names in config.json.",
                hint='Set model.config.id2label before save_pretrained, or submit it as kind = "encoder".',
            )
        num = cfg.get("num_labels")
        if num is not None and num != len(id2label):
            raise BundleError(
                f"config.json: num_labels = {num} but id2label has {len(id2label)} entries."
            )
        if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
            raise BundleError(
                f'kind = "classifier" but config.json architectures are {archs}; expected a '
                "*ForSequenceClassification checkpoint.",
                hint='Submit a plain encoder as kind = "encoder" instead.',
            )
        if not archs:
            warnings.append(
                "config.json lists no architectures; assuming a sequence-classification head."
            )
        heads = [
            t
            for n, t in info.tensors.items()
            if re.search(r"(classifier|score)(\.out_proj)?\.weight$", n)
        ]
        if heads and not any(t.shape[0] == len(id2label) for t in heads):
            raise BundleError(
                f"config.json has {len(id2label)} labels but the classification head has "
                f"{[list(t.shape) for t in heads]} weights; they do not match."
            )
        ckpt_labels = [str(v) for v in id2label.values()]
        missing = [lab for lab in ckpt_labels if lab not in m.labels]
        extra = [lab for lab in m.labels if lab not in ckpt_labels]
        if missing or extra:
            raise BundleError(
                f"bedside.toml [labels] must map exactly the checkpoint's labels ({', '.join(ckpt_labels)}); "
                + (f"missing: {', '.join(missing)}. " if missing else "")
                + (f"not in config.json id2label: {', '.join(extra)}." if extra else ""),
                hint='One line per checkpoint label: LABEL_0 = "neoplasms".',
            )
    elif m.kind == "causal-lm":
        if model_type not in DECODER_TYPES:
            raise BundleError(
                f'kind = "causal-lm" but model_type {model_type!r} is an encoder; causal-lm needs one of '
                f"{', '.join(DECODER_TYPES)}.",
                hint='Submit an encoder as kind = "encoder" (or "classifier" with a head).',
            )
        if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            warnings.append(
                f"architectures {archs} has no language-model head; a fresh one will be added for phase 2."
            )
    else:
        if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            warnings.append(
                f"{archs[0]} is a causal LM submitted as an encoder; it will be used with {m.phase1.pooling} pooling."
            )
    if classes is not None:
        known = list(classes)
        unknown = sorted({v for v in m.labels.values() if v not in known})
        if unknown:
            raise BundleError(
                f"bedside.toml [labels] maps onto {', '.join(repr(u) for u in unknown)}, which "
                f"{'is not a class' if len(unknown) == 1 else 'are not classes'} of this workspace; "
                f"the classes are: {', '.join(known)}.",
                hint="Map every checkpoint label onto one of the workspace's class names, spelt exactly.",
            )
        if m.kind == "classifier":
            uncovered = [c for c in known if c not in set(m.labels.values())]
            if uncovered:
                warnings.append(
                    f"no checkpoint label maps onto {', '.join(uncovered)}; phase 1 will never predict them."
                )
        bad = sorted(k for k in m.descriptions if k not in known)
        if bad:
            raise BundleError(
                f"bedside.toml [descriptions] names {', '.join(repr(b) for b in bad)}, not classes of this "
                f"workspace; the classes are: {', '.join(known)}."
            )
        bad = sorted(k for k in m.claimed_per_class if k not in known)
        if bad:
            raise BundleError(
                f"bedside.toml [claimed_per_class] names {', '.join(repr(b) for b in bad)}, not classes "
                f"of this workspace; the classes are: {', '.join(known)}."
            )


# -- the whole pipeline ----------------------------------------------------------------------------
def validate_dir(
    root: Path, *, classes: Sequence[str] | None = None, limits: BundleLimits | None = None
) -> BundleReport:
    """Run every intake check on an unpacked bundle directory."""
    limits = limits or BundleLimits()
    files = scan_files(root, limits)
    names = {f.path for f in files}
    for req in ("bedside.toml", "config.json"):
        if req not in names:
            raise BundleError(
                f"the bundle has no {req}; a bundle needs bedside.toml, config.json, a tokenizer and "
                "model.safetensors at its top level.",
                hint="See docs/submission-format.md for the layout.",
            )
    parsed = check_json_files(root, files)
    manifest = load_manifest(root / "bedside.toml")
    cfg = parsed["config.json"]
    if not isinstance(cfg, dict):
        raise BundleError("config.json must be a JSON object.")
    model_type = cfg.get("model_type")
    if model_type not in MODEL_TYPES:
        raise BundleError(
            f"config.json: model_type {model_type!r} is not supported; bedside accepts architectures that "
            f"transformers implements natively: {', '.join(MODEL_TYPES)}.",
            hint="Ask the workspace owner if you need another architecture.",
        )
    warnings: list[str] = []
    info = inspect_weights(root, sorted(names), limits.max_header_bytes)
    hidden, vocab, layers, rows = check_config_vs_weights(cfg, info, warnings)
    tok_size = check_tokenizer(root, names, parsed, rows, warnings)
    check_chat_template(root, names, parsed)
    check_kind(manifest, cfg, info, classes, warnings)
    if manifest.phase1.pooling and "1_Pooling/config.json" in names:
        pool = parsed.get("1_Pooling/config.json")
        if (
            isinstance(pool, dict)
            and pool.get("pooling_mode_cls_token")
            and manifest.phase1.pooling != "cls"
        ):
            warnings.append(
                "1_Pooling/config.json asks for CLS pooling but bedside.toml says mean pooling."
            )
    archs = [a for a in cfg.get("architectures") or [] if isinstance(a, str)]
    return BundleReport(
        root=root,
        manifest=manifest,
        files=files,
        content_hash=content_hash(root, files),
        model_type=str(model_type),
        architectures=archs,
        weights=info,
        hidden_size=hidden,
        vocab_size=vocab,
        n_layers=layers,
        tokenizer_vocab=tok_size,
        warnings=warnings,
    )


@contextmanager
def checked_bundle(
    path: Path, *, classes: Sequence[str] | None = None, limits: BundleLimits | None = None
) -> Iterator[BundleReport]:
    """Open (safely unpack) and validate a bundle; ``report.root`` is readable inside the block."""
    with opened_bundle(Path(path), limits) as root:
        yield validate_dir(root, classes=classes, limits=limits)


def validate_bundle(
    path: Path, *, classes: Sequence[str] | None = None, limits: BundleLimits | None = None
) -> BundleReport:
    """Validate a bundle directory or archive. Raises BundleError naming the first problem.

    Example: ``validate_bundle(Path("b.zip")).n_params``
    """
    with checked_bundle(path, classes=classes, limits=limits) as report:
        return report

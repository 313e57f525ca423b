from __future__ import annotations

from pathlib import Path

import pytest

from bedside.errors import BundleError
from bedside.submissions.manifest import Manifest, load_manifest, parse_manifest
from bedside.testing.tinymodels import DEFAULT_CLASSES, default_manifest


def test_defaults_filled() -> None:
    m = parse_manifest('name = "m"\nkind = "encoder"\n')
    d = m.to_dict()
    assert d["phase1"] == {"method": "similarity", "pooling": "mean", "prompt": None}
    assert d["train"] == {
        "method": "full", "epochs": 3, "learning_rate": 5e-5, "batch_size": 16, "max_length": 256,
        "warmup_ratio": 0.1, "weight_decay": 0.01, "class_weighting": "balanced", "seed": 0,
        "validation_fraction": 0.1, "early_stopping_patience": 2,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": None},
        "windows": 1, "window_stride": None, "window_pooling": "mean", "layer_lr_decay": 1.0,
        "label_smoothing": 0.0, "decision_rule": "fitted-offsets",
        "freeze_embeddings": False, "checkpoint_minutes": None, "async_checkpoints": True,
        "compile": False, "objective": "classifier", "lexical_blend": 0.0,
    }  # fmt: skip
    assert d["labels"] == {} and d["descriptions"] == {} and d["description"] == ""
    assert Manifest.from_dict(d).to_dict() == d  # round trip


@pytest.mark.parametrize("kind", ["encoder", "classifier", "causal-lm"])
def test_tinymodels_manifest_is_valid(kind: str) -> None:
    m = Manifest.from_dict(default_manifest(kind, f"tiny-{kind}", DEFAULT_CLASSES))
    assert m.kind == kind


def test_lora_and_prompt() -> None:
    m = parse_manifest(
        'name = "llm"\nkind = "causal-lm"\n[phase1]\nprompt = "Classify: {text}\\nOptions: {labels}"\n'
        '[train]\nmethod = "lora"\n[train.lora]\nr = 16\ntarget_modules = ["q_proj", "v_proj"]\n'
    )
    d = m.to_dict()
    assert d["phase1"]["method"] == "prompt" and d["phase1"]["pooling"] is None
    assert d["train"]["lora"] == {
        "r": 16,
        "alpha": 16,
        "dropout": 0.1,
        "target_modules": ["q_proj", "v_proj"],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kind = "encoder"', "the required key 'name' is missing"),
        (
            'name = "m"\nkind = "seq2seq"',
            "kind must be one of 'encoder', 'classifier', 'causal-lm'; found 'seq2seq'",
        ),
        ('name = "m"\nkind = "encoder"\nfoo = 1', "unknown key(s) 'foo' in the top level"),
        (
            'name = "m"\nkind = "encoder"\n[train.lora]\nrank = 4',
            "unknown key(s) 'rank' in [train.lora]",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nepochs = 0',
            "train.epochs must be in the range 1..20; found 0",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nepochs = 2.5',
            "train.epochs must be an integer; found 2.5",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nbatch_size = 512',
            "train.batch_size must be in the range 1..256",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nmax_length = 8',
            "train.max_length must be in the range 16..2048",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nwarmup_ratio = 0.9',
            "train.warmup_ratio must be in the range 0..0.5",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nmethod = "qlora"',
            "train.method must be one of 'full', 'lora', 'head-only'",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nvalidation_fraction = 0.5',
            "train.validation_fraction must be in the range 0..0.3",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train.lora]\nr = 1000',
            "train.lora.r must be in the range 1..256",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train.lora]\ndropout = 0.9',
            "train.lora.dropout must be in the range 0..0.5",
        ),
        (
            'name = "m"\nkind = "encoder"\n[phase1]\npooling = "max"',
            "phase1.pooling must be one of 'mean', 'cls'",
        ),
        (
            'name = "m"\nkind = "classifier"\n[phase1]\npooling = "cls"',
            'phase1.pooling applies to kind = "encoder" only',
        ),
        ('name = "m"\nkind = "classifier"', "a classifier bundle needs a [labels] table"),
        (
            'name = "m"\nkind = "encoder"\n[labels]\nA = "neoplasms"',
            '[labels] applies to kind = "classifier" only',
        ),
        (
            'name = "m"\nkind = "causal-lm"\n[phase1]\nprompt = "no placeholders"',
            "must contain the placeholders {text} and {labels}",
        ),
        (
            'name = "m"\nkind = "causal-lm"\n[phase1]\nmethod = "similarity"',
            "phase1.method 'similarity' does not match kind 'causal-lm'",
        ),
        ('name = "bad/name"\nkind = "encoder"', "name must be 1..100 characters"),
        (
            'name = "m"\nkind = "encoder"\n[train]\nclass_weighting = "inverse"',
            "train.class_weighting must be one of 'none', 'sqrt', 'balanced'; found 'inverse'",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nwindows = 0',
            "train.windows must be in the range 1..16; found 0",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nwindow_stride = 4',
            "train.window_stride must be in the range 8..512; found 4",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nwindow_pooling = "sum"',
            "train.window_pooling must be one of 'mean', 'max'; found 'sum'",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nlayer_lr_decay = 0.2',
            "train.layer_lr_decay must be in the range 0.5..1; found 0.2",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\nlabel_smoothing = 0.5',
            "train.label_smoothing must be in the range 0..0.3; found 0.5",
        ),
        (
            'name = "m"\nkind = "encoder"\n[train]\ndecision_rule = "topk"',
            "train.decision_rule must be one of 'argmax', 'fitted-offsets'; found 'topk'",
        ),
    ],
)
def test_manifest_errors(text: str, message: str) -> None:
    with pytest.raises(BundleError) as exc:
        parse_manifest(text)
    assert message in str(exc.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="the bundle has no bedside.toml"):
        load_manifest(tmp_path)

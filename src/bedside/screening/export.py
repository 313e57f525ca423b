"""``bedside export SUBMISSION --onnx``: the deployed model as one ONNX graph, checked against torch.

A full or LoRA-merged classifier exports as is (``input_ids``, ``attention_mask`` -> ``scores``,
the logits per window). A head-only model exports as encoder + pooling + L2 normalisation +
logistic head in one graph, so onnxruntime needs no torch at all. Windows, window pooling and
the decision rule stay outside the graph, in the same numpy code the torch predictor uses
(``engine.screen.OnnxPredictor``). After export the same texts run through torch and
onnxruntime and the largest absolute difference of the probabilities is reported; above
``TOLERANCE`` the export is refused.

Weights are loaded the safe way (safetensors, no remote code); ``onnx`` and ``onnxruntime``
are an optional extra (``pip install 'bedside[onnx]'``), imported only here.

Example::

    info = export_onnx(ws, submission_id=3)
    info["max_abs_diff"]
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedside.errors import ConfigError, NotFoundError
from bedside.screening.models import ScreeningModel, list_models, set_meta

if TYPE_CHECKING:
    from bedside.workspace import Workspace

TOLERANCE = 1e-4
CHECK_TEXTS = 64
INSTALL = "pip install 'bedside[onnx]' (onnx and onnxruntime)"


def _need_onnx() -> Any:
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ConfigError(f"ONNX export needs onnx and onnxruntime: {e}.", hint=INSTALL) from e
    return onnx, onnxruntime


def model_for_submission(ws: Workspace, submission_id: int) -> ScreeningModel:
    """The newest screening model deployed from ``submission_id``."""
    found = [m for m in list_models(ws) if m.submission_id == submission_id]
    if not found:
        raise NotFoundError(
            f"submission {submission_id} has no screening model.",
            hint=f"Deploy it first: bedside deploy {submission_id}.",
        )
    return found[-1]


def _graph_module(predictor: Any) -> Any:
    """A torch module (input_ids, attention_mask) -> scores for the predictor's network."""
    import torch

    from bedside.engine.modeling import pool

    class Classifier(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    class HeadOnly(torch.nn.Module):
        def __init__(self, model: Any, head: Any, pooling: str) -> None:
            super().__init__()
            self.model, self.pooling = model, pooling
            t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in head.tensors().items()}
            self.coef = torch.nn.Parameter(t["coef"], requires_grad=False)
            self.intercept = torch.nn.Parameter(t["intercept"], requires_grad=False)
            self.mean = torch.nn.Parameter(t["mean"], requires_grad=False)
            self.scale = torch.nn.Parameter(t["scale"], requires_grad=False)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)
            x = pool(hidden.last_hidden_state.float(), attention_mask, self.pooling)
            x = torch.nn.functional.normalize(x, dim=-1)
            z = (x - self.mean) / self.scale
            return z @ self.coef.T + self.intercept

    if getattr(predictor, "plan", None) is not None:
        raise ConfigError(
            "this model was trained on the label tokens (a causal LM scored by the "
            "log-likelihood of each class name); the ONNX export covers classifier and "
            "head-only models only.",
            hint="Screen it with the torch runtime (--runtime torch).",
        )
    if predictor.head is not None:
        return HeadOnly(predictor.model, predictor.head, predictor.embed_pooling).eval()
    return Classifier(predictor.model).eval()


def export_graph(predictor: Any, dest: Path, opset: int = 17) -> float:
    """Write ``predictor``'s network as ``dest/model.onnx`` with ``onnx.json`` (classes, window
    settings) and its tokenizer; returns the export's seconds. No check: ``export_onnx`` runs it.

    The one export path: ``bedside export --onnx`` and ``bench/screen_speed.py`` both call it."""
    import time

    import torch

    from bedside.engine.screen import onnx_settings

    dest = Path(dest)
    module = _graph_module(predictor)
    tok = predictor.tokenizer
    sample = tok(["a short example", "another example text"], padding=True, return_tensors="pt")
    t0 = time.monotonic()
    # The tracer warns about shape checks it freezes as constants; the torch-vs-onnxruntime
    # check in export_onnx is what tells whether the graph still holds for other shapes.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"]),
            str(dest / "model.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["scores"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "length"},
                "attention_mask": {0: "batch", 1: "length"},
                "scores": {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    export_s = time.monotonic() - t0
    meta = {
        "head_only": predictor.head is not None,
        "classes": predictor.classes,
        "settings": onnx_settings(predictor),
        "opset": opset,
        "inputs": ["input_ids", "attention_mask"],
        "output": "scores",
    }
    (dest / "onnx.json").write_text(json.dumps(meta, indent=1))
    tok.save_pretrained(dest)
    return export_s


def export_onnx(
    ws: Workspace, submission_id: int, texts: list[str] | None = None, opset: int = 17
) -> dict[str, Any]:
    """Export the screening model of ``submission_id`` to ``artefacts/screening/JOB/onnx/``
    (``model.onnx``, ``onnx.json``, tokenizer and ``decision.json``, and the model card as
    ``README.md``); returns the check's numbers."""
    import numpy as np
    import torch

    from bedside.data.corpus import load_corpus
    from bedside.engine.inference import load_predictor
    from bedside.engine.screen import load_onnx_predictor
    from bedside.screening.card import write_card

    _need_onnx()
    model = model_for_submission(ws, submission_id)
    predictor = load_predictor(model.model_dir(ws), ws.bundles_dir / model.bundle_hash)
    dest = model.onnx_dir(ws)
    tmp = dest.with_name("onnx.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    export_s = export_graph(predictor, tmp, opset)
    head_only = predictor.head is not None
    if (model.model_dir(ws) / "decision.json").is_file():
        shutil.copyfile(model.model_dir(ws) / "decision.json", tmp / "decision.json")
    if texts is None:
        corpus = load_corpus(ws, model.corpus_version_id)
        texts = [str(t) for t in corpus.holdout["text"].head(CHECK_TEXTS)]
    # a head-only graph's tokenizer is the bundle's (the encoder is the submitted one)
    bundle = ws.bundles_dir / model.bundle_hash if head_only else tmp
    onnx_pred = load_onnx_predictor(tmp, bundle, threads=torch.get_num_threads())
    p_torch = predictor.predict_proba(list(texts))
    p_onnx = onnx_pred.predict_proba(list(texts))
    diff = float(np.max(np.abs(p_torch - p_onnx))) if len(texts) else 0.0
    if diff > TOLERANCE:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(
            f"the ONNX graph does not reproduce the torch model: max abs difference of the "
            f"probabilities {diff:.2e} on {len(texts)} texts, above {TOLERANCE:.0e}.",
            hint="Screen with the torch runtime; report the model type to the maintainers.",
        )
    info = {
        "path": str(dest.relative_to(ws.root)),
        "max_abs_diff": diff,
        "checked_texts": len(texts),
        "export_s": round(export_s, 2),
        "bytes": (tmp / "model.onnx").stat().st_size,
        "head_only": head_only,
        "opset": opset,
    }
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    set_meta(ws, model.id, "onnx", info)
    write_card(ws, model.id, dest / "README.md")
    return info


def copy_export(ws: Workspace, submission_id: int, out: Path) -> Path:
    """Copy the exported directory (graph, tokenizer, decision rule, card) to ``out``."""
    model = model_for_submission(ws, submission_id)
    src = model.onnx_dir(ws)
    if not (src / "model.onnx").is_file():
        raise NotFoundError(f"submission {submission_id} has no ONNX export yet.")
    shutil.copytree(src, out, dirs_exist_ok=True)
    return out

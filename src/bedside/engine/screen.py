"""A ``screen`` job: class probabilities for new, unlabelled abstracts, streamed in chunks.

Runs inside the sandbox like any job. The host stages ``inputs/screen.parquet`` (``row_id``,
``text``; written in row groups) and the deployed model in ``inputs/model/`` (phase 2's
``out/model/``, plus ``model.onnx`` when it was exported). The job reads one chunk of texts at a
time, predicts it and appends the probabilities to ``out/probs.f32``: ``rows x classes``
little-endian float32, in input order, nothing else (no row ids, no text). Memory is bounded by
the chunk, not the file: a 2-million-row file is 2 million / ``chunk_rows`` steps.

``spec.extra["screen"]``: ``{"input", "model", "chunk_rows", "runtime": "torch" | "onnx"}``.
The ``onnx`` runtime runs ``inputs/model/model.onnx`` with onnxruntime (the fast path); windows,
pooling and the decision rule are the same code as the torch predictor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bedside.engine.io import JobContext
from bedside.errors import JobError

PROBS_FILE = "probs.f32"
DEFAULT_CHUNK = 2048
RUNTIMES = ("torch", "onnx")


@dataclass
class OnnxPredictor:
    """``predict_proba`` like ``inference.Predictor``, with the network run by onnxruntime.

    The graph takes ``input_ids`` and ``attention_mask`` (int64, batch x length) and returns
    ``scores``: classifier logits, or for a head-only model the head's logits over the pooled,
    normalised embedding (encoder, pooling and head in one graph)."""

    session: Any
    tokenizer: Any
    rule: Any
    settings: dict[str, Any]
    batch_size: int = 32

    @property
    def classes(self) -> list[str]:
        return list(self.rule.classes)

    def scores(self, texts: list[str]) -> np.ndarray:
        from bedside.engine.modeling import sorted_batches
        from bedside.engine.windows import encode_windows, pool_rows

        s = self.settings
        win = encode_windows(
            self.tokenizer,
            [str(t) for t in texts],
            int(s["max_length"]),
            int(s.get("windows", 1)),
            s.get("stride"),
        )
        ids = win.encoded.ids
        pad = int(self.tokenizer.pad_token_id)
        out: np.ndarray | None = None
        for idx in sorted_batches(win.encoded.lengths, self.batch_size):
            width = max(len(ids[i]) for i in idx)
            x = np.full((len(idx), width), pad, dtype=np.int64)
            m = np.zeros((len(idx), width), dtype=np.int64)
            for j, i in enumerate(idx):
                x[j, : len(ids[i])] = ids[i]
                m[j, : len(ids[i])] = 1
            res = self.session.run(["scores"], {"input_ids": x, "attention_mask": m})[0]
            if out is None:
                out = np.zeros((len(ids), res.shape[1]), dtype=np.float64)
            out[idx] = res
        if out is None:
            return np.zeros((0, len(self.classes)))
        return pool_rows(out, win.owner, win.n_texts, str(s.get("pooling", "mean")))

    def predict_proba(self, texts: list[str], counter: Any = None) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.classes)))
        return np.asarray(self.rule.apply(self.scores(texts)))


def onnx_settings(predictor: Any) -> dict[str, Any]:
    """The window settings an exported graph is run with (the torch predictor's own)."""
    s = dict(predictor.settings)
    return {k: s.get(k) for k in ("max_length", "windows", "stride", "pooling")}


def load_onnx_predictor(model_dir: Path, bundle_dir: Path, threads: int) -> OnnxPredictor:
    """An onnxruntime session over ``model_dir/model.onnx`` with the saved model's tokenizer,
    window settings and decision rule."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise JobError(
            "the onnx runtime was asked for, but onnxruntime is not installed.",
            error_class="invalid_input",
            hint="pip install 'bedside[onnx]', or screen with --runtime torch.",
        ) from e
    import json

    from bedside.engine.decision import DecisionRule
    from bedside.engine.modeling import load_tokenizer

    graph = model_dir / "model.onnx"
    meta_path = model_dir / "onnx.json"
    if not graph.is_file() or not meta_path.is_file():
        raise JobError(
            "the onnx runtime needs model.onnx and onnx.json beside the model; found neither.",
            error_class="invalid_input",
            hint="Export it first: bedside export SUBMISSION --onnx.",
        )
    meta = json.loads(meta_path.read_text())
    head_only = bool(meta.get("head_only"))
    tok = load_tokenizer(bundle_dir if head_only else model_dir)
    if (model_dir / "decision.json").is_file():
        rule = DecisionRule.load(model_dir)
    else:
        classes = list(meta["classes"])
        rule = DecisionRule("argmax", [0.0] * len(classes), classes)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    return OnnxPredictor(sess, tok, rule, dict(meta["settings"]))


def run(ctx: JobContext) -> dict[str, Any]:
    """Predict every text of the staged input, chunk by chunk; returns info for compute.json."""
    import pyarrow.parquet as pq

    cfg = dict(ctx.spec.extra.get("screen") or {})
    runtime = str(cfg.get("runtime", "torch"))
    if runtime not in RUNTIMES:
        raise JobError(
            f"screen runtime must be one of {RUNTIMES}, got {runtime!r}.",
            error_class="invalid_input",
        )
    chunk = int(cfg.get("chunk_rows", DEFAULT_CHUNK))
    src = ctx.job_dir / str(cfg.get("input", "inputs/screen.parquet"))
    model_dir = ctx.job_dir / str(cfg.get("model", "inputs/model"))
    if not src.is_file() or not model_dir.is_dir():
        raise JobError(
            "a screen job needs inputs/screen.parquet and inputs/model/; one is missing.",
            error_class="invalid_input",
        )
    predictor: Any
    if runtime == "onnx":
        predictor = load_onnx_predictor(model_dir, ctx.bundle, ctx.spec.threads)
    else:
        from bedside.engine.inference import load_predictor

        predictor = load_predictor(model_dir, ctx.bundle, str(ctx.device))
    if list(predictor.classes) != ctx.class_names:
        raise JobError(
            f"the model predicts classes {predictor.classes}, the workspace has {ctx.class_names}.",
            error_class="invalid_input",
        )
    pf = pq.ParquetFile(src)
    n = int(pf.metadata.num_rows)
    ctx.progress.start("screen", n)
    done = 0
    with (ctx.out / PROBS_FILE).open("wb") as fh:
        for batch in pf.iter_batches(batch_size=chunk, columns=["text"]):
            texts = [str(t) for t in batch.column(0).to_pylist()]
            if runtime == "onnx":
                probs = predictor.predict_proba(texts)
            else:
                probs = predictor.predict_proba(texts, counter=ctx.counter)
            p = np.asarray(probs, dtype=np.float64)
            if p.shape != (len(texts), len(ctx.class_names)) or not np.isfinite(p).all():
                raise JobError(
                    f"the model gave probabilities of shape {p.shape} (or non-finite ones) for "
                    f"{len(texts)} texts.",
                    error_class="model_error",
                )
            fh.write(p.astype("<f4").tobytes())
            done += len(texts)
            ctx.progress.update(done, n, examples=len(texts))
    ctx.log(f"screened {done} abstracts with the {runtime} runtime in chunks of {chunk}")
    return {"screened": done, "runtime": runtime, "chunk_rows": chunk}

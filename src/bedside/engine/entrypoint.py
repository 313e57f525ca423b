"""``python -m bedside.engine.entrypoint JOB_DIR``: run one job and talk only through files.

Reads ``spec.json``, runs phase 1 (out of the box) or phase 2 (fine-tune), writes
``out/predictions.json``, ``out/progress.jsonl``, ``out/compute.json`` and, on failure,
``out/error.json`` with an ``error_class`` (model_error, out_of_memory, invalid_input,
budget_exhausted) and a non-zero exit code. Writes nowhere but ``out/`` and ``checkpoints/``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bedside.engine.io import (
    JobContext,
    prepare_environment,
    write_error,
    write_json,
    write_predictions,
)
from bedside.errors import BedsideError, JobError

ERROR_CLASSES = ("model_error", "out_of_memory", "invalid_input", "budget_exhausted")


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def classify(exc: BaseException) -> str:
    """The contributor-visible class of a failure."""
    if isinstance(exc, JobError) and exc.error_class in ERROR_CLASSES:
        return exc.error_class
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "out_of_memory"
    if isinstance(exc, BedsideError):
        return "invalid_input"
    return "model_error"


def run_job(job_dir: Path) -> dict[str, Any]:
    """Run the job in ``job_dir``; returns the compute record. Raises on failure."""
    from bedside.jobs.spec import JobSpec

    spec = JobSpec.read(job_dir)
    ctx = JobContext(spec, job_dir)
    prepare_environment(job_dir, ctx.out)

    import torch  # only after the environment is locked down

    from bedside.engine.flops import FlopCounter
    from bedside.engine.modeling import pick_device
    from bedside.engine.progress import Progress

    torch.set_num_threads(max(1, int(spec.threads)))
    torch.manual_seed(ctx.seed)
    ctx.device = pick_device(spec.device)
    ctx.counter = FlopCounter(budget=spec.budget_flops)
    ctx.progress = Progress(ctx.out / "progress.jsonl", bar=spec.extra.get("progress_bar"))
    ctx.log(
        f"job {spec.job_id}: {spec.kind} {spec.model_kind} on {ctx.device}, {spec.threads} threads"
    )
    t0 = time.monotonic()
    compute: dict[str, Any] = {"device": str(ctx.device), "threads": spec.threads}
    if not ctx.bundle.is_dir():
        raise JobError(
            f"the model bundle {spec.bundle!r} is missing from the job directory (or is a broken link).",
            error_class="invalid_input",
        )
    if spec.budget_flops is not None and spec.budget_flops <= 0:
        raise JobError("the compute budget is already spent.", error_class="budget_exhausted")
    if spec.kind == "phase1":
        from bedside.engine import zeroshot

        holdout = ctx.holdout()
        runner = {
            "classifier": zeroshot.run_classifier,
            "encoder": zeroshot.run_encoder,
            "causal-lm": zeroshot.run_causal,
        }[spec.model_kind]
        args = (
            ctx.bundle,
            holdout["text"].tolist(),
            ctx.classes,
            ctx.manifest,
            ctx.device,
            ctx.counter,
            ctx.progress,
        )
        info: dict[str, Any] = {}
        if spec.model_kind == "causal-lm":  # calibrated label log-likelihood (engine/llm.py)
            from bedside.engine import llm

            probs, info = llm.run_phase1(*args)
        else:
            probs = runner(*args)
        row_ids, stopped = holdout["row_id"].tolist(), False
    elif spec.kind == "phase2":
        from bedside.engine import finetune

        res = finetune.run(ctx)
        probs, row_ids, stopped, info = res.probs, res.row_ids, res.stopped_by_budget, res.info
    elif spec.kind == "screen":  # new abstracts: out/probs.f32, no predictions.json
        from bedside.engine import screen

        probs, row_ids, stopped, info = None, [], False, screen.run(ctx)
    else:
        raise JobError(
            f"the engine runs phase1 and phase2 jobs, not {spec.kind!r}.",
            error_class="invalid_input",
        )
    ctx.progress.finish()
    validation = info.pop("validation", None)
    if probs is not None:
        write_predictions(ctx.out / "predictions.json", ctx.class_names, row_ids, probs)
    compute.update(
        {
            "flops": ctx.counter.flops,
            "flops_by_stage": ctx.counter.by_stage,
            "seconds_by_stage": ctx.progress.seconds,
            "tokens": ctx.counter.tokens,
            "wall_s": round(time.monotonic() - t0, 3),
            "peak_rss_mb": _peak_rss_mb(),
            "stopped_by_budget": bool(stopped),
            "budget_flops": spec.budget_flops,
            "n_params": info.get("n_params"),
            "n_trainable": info.get("n_trainable"),
            "info": {k: v for k, v in info.items() if k not in ("n_params", "n_trainable")},
            "validation": validation.to_dict() if validation is not None else None,
        }
    )
    if compute["n_params"] is None:
        compute["n_params"] = ctx.counter.n_params
    write_json(ctx.out / "compute.json", compute)
    ctx.log(f"done in {compute['wall_s']} s, {ctx.counter.flops:.3g} FLOPs")
    return compute


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bedside.engine.entrypoint JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    out = job_dir / "out"
    try:
        spec_out = json.loads((job_dir / "spec.json").read_text()).get("out", "out")
        out = job_dir / spec_out
    except Exception:
        pass
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    log.touch(mode=0o600, exist_ok=True)
    os.chmod(log, 0o600)
    t0 = time.monotonic()
    try:
        run_job(job_dir)
        return 0
    except BaseException as e:  # every failure leaves an error.json behind
        cls = classify(e)
        msg = e.message if isinstance(e, BedsideError) else f"{type(e).__name__}: {e}"
        with log.open("a") as fh:
            fh.write(traceback.format_exc())
        write_error(out, cls, msg)
        write_json(
            out / "compute.json",
            {
                "flops": None,
                "wall_s": round(time.monotonic() - t0, 3),
                "peak_rss_mb": _peak_rss_mb(),
                "stopped_by_budget": False,
                "failed": True,
            },
        )
        print(f"bedside job failed ({cls}): {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

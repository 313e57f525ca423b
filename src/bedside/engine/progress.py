"""Progress of a running job: ``out/progress.jsonl`` records plus an optional terminal bar.

Each record: ``ts, stage, step, total, loss, throughput (examples/s), eta_s, epoch, val_macro_f1``.
The file is appended one line at a time (and flushed) so the store/web can tail it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO


class Progress:
    """Appends progress records; draws a bar on ``stream`` when it is a TTY or ``bar=True``."""

    def __init__(self, path: Path, bar: bool | None = None, stream: TextIO | None = None) -> None:
        self.path = path
        self.stream = stream or sys.stderr
        self.bar = bool(bar) if bar is not None else self.stream.isatty()
        self._stage = ""
        self._t0 = time.monotonic()
        self._step0 = 0
        self._examples = 0
        self._last_write = 0.0
        self.seconds: dict[str, float] = {}  # wall time per stage, for compute.json

    def _close(self) -> None:
        if self._stage:
            spent = time.monotonic() - self._t0
            self.seconds[self._stage] = round(self.seconds.get(self._stage, 0.0) + spent, 3)

    def start(self, stage: str, total: int, step: int = 0) -> None:
        """Begin a stage (``tokenise``, ``train``, ``predict`` ...); throughput restarts."""
        self._close()
        self._stage, self._t0, self._step0, self._examples = stage, time.monotonic(), step, 0
        self.update(step, total, force=True)

    def finish(self) -> None:
        """Close the running stage's clock."""
        self._close()
        self._stage = ""

    def update(
        self,
        step: int,
        total: int,
        examples: int = 0,
        loss: float | None = None,
        epoch: int | None = None,
        val_macro_f1: float | None = None,
        force: bool = False,
    ) -> None:
        self._examples += examples
        now = time.monotonic()
        elapsed = max(now - self._t0, 1e-9)
        done = step - self._step0
        thr = self._examples / elapsed if self._examples else None
        eta = (total - step) * elapsed / done if done > 0 and total >= step else None
        rec: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "stage": self._stage,
            "step": step,
            "total": total,
            "loss": None if loss is None else round(float(loss), 5),
            "throughput": None if thr is None else round(thr, 3),
            "eta_s": None if eta is None else round(eta, 1),
            "epoch": epoch,
            "val_macro_f1": None if val_macro_f1 is None else round(float(val_macro_f1), 5),
        }
        # One line per second at most (and always the first, last and forced ones): a long run
        # must not grow the file by one line per batch.
        if force or step >= total or now - self._last_write >= 1.0:
            self._last_write = now
            with self.path.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
        if self.bar:
            self._draw(rec)

    def _draw(self, rec: dict[str, Any]) -> None:
        total = max(rec["total"], 1)
        frac = min(rec["step"] / total, 1.0)
        filled = int(frac * 30)
        parts = [
            f"\r{rec['stage']:>9} |{'#' * filled}{'.' * (30 - filled)}| {rec['step']}/{rec['total']}"
        ]
        if rec["loss"] is not None:
            parts.append(f"loss {rec['loss']:.4f}")
        if rec["throughput"] is not None:
            parts.append(f"{rec['throughput']:.1f} ex/s")
        if rec["eta_s"] is not None:
            parts.append(f"eta {rec['eta_s']:.0f}s")
        self.stream.write("  ".join(parts) + ("\n" if rec["step"] >= rec["total"] else ""))
        self.stream.flush()

"""What a job may show: progress records reduced to known numbers, and the contributor's view of
a job row (never the error message or logs, which may quote data).

Example::

    clean_progress({"stage": "train", "step": 3, "total": 10, "note": "..."})
    # {"step": 3, "total": 10, "stage": "train"}
"""

from __future__ import annotations

import math
import re
from typing import Any

PROGRESS_NUMBERS = ("ts", "step", "total", "loss", "throughput", "eta_s", "epoch", "val_macro_f1")
_STAGE = re.compile(r"^[a-z_-]{1,24}$")  # engine constants (train, predict, embed ...), no data


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        return v if math.isfinite(v) else None
    except OverflowError:  # an int too large for a float
        return None


def clean_progress(rec: Any) -> dict[str, Any] | None:
    """A progress record reduced to known numeric fields and a constant stage name."""
    if not isinstance(rec, dict):
        return None
    out: dict[str, Any] = {k: n for k in PROGRESS_NUMBERS if (n := _number(rec.get(k))) is not None}
    stage = rec.get("stage")
    out["stage"] = stage if isinstance(stage, str) and _STAGE.match(stage) else "working"
    return out


def public_job_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a contributor may see of a job: state, attempts, progress, an error class."""
    return {
        "id": row["id"],
        "submission_id": row["submission_id"],
        "kind": row["kind"],
        "state": row["state"],
        "attempts": row["attempts"],
        "progress": clean_progress(row.get("progress") or {}) if row.get("progress") else {},
        "error_class": row["error_class"] if row["state"] in ("failed", "cancelled") else None,
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }

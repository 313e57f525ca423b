"""The job lifecycle has one owner: no import cycle inside ``bedside.jobs``, nothing outside
``jobs/queue.py`` writes job rows, and the engine's training settings come back typed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bedside
from bedside.errors import BedsideError, ConfigError
from bedside.jobs.spec import JobSpec
from bedside.submissions.manifest import TrainConfig

SRC = Path(bedside.__file__).parent
JOB_WRITES = re.compile(r"\b(jobs|job_events)\.(insert|update|delete)\(")


def _module_imports(path: Path) -> set[str]:
    """``bedside.jobs.*`` modules imported at module level (not in functions or TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {m for m in mods if m.startswith("bedside.jobs.")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bedside.jobs.")}
    return found


def test_no_import_cycle_in_jobs() -> None:
    mods = {
        f"bedside.jobs.{p.stem}": p for p in (SRC / "jobs").glob("*.py") if p.stem != "__init__"
    }
    graph = {m: _module_imports(p) & set(mods) for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 1:
            pytest.fail("import cycle: " + " -> ".join([*path, m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for n in sorted(graph[m]):
            visit(n, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])
    assert "bedside.jobs.pipeline" not in mods  # split into staging, collect, foreground ...


def test_only_the_queue_writes_job_rows() -> None:
    writers = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p != SRC / "jobs" / "queue.py" and JOB_WRITES.search(p.read_text())
    )
    assert writers == []


def test_the_engine_gets_its_train_config_typed() -> None:
    spec = JobSpec(
        job_id=3,
        kind="phase2",
        model_kind="encoder",
        manifest={"train": {"epochs": 4, "learning_rate": 1e-4, "lora": {"r": 4}}},
        classes=[],
        seed=11,
    )
    tr = spec.train_config()
    assert isinstance(tr, TrainConfig)
    assert (tr.epochs, tr.learning_rate, tr.lora.r, tr.seed) == (4, 1e-4, 4, 11)
    with pytest.raises(ConfigError, match="unknown \\[train\\] key"):
        spec.train_config({"epochz": 2})
    with pytest.raises(BedsideError, match="epochs"):
        spec.train_config({"epochs": 500})

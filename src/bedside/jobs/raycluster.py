"""Ray, imported late (the ``cluster`` extra), and what a job asks the cluster for."""

from __future__ import annotations

from typing import Any

from bedside.config import JobLimits
from bedside.errors import ConfigError


def ray_module() -> Any:
    """``import ray``, or a ConfigError naming the install command."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            "the Ray executor needs the `ray` package, which is not installed.",
            hint="Install it with `python3 -m pip install -e '.[cluster]'`.",
        ) from e
    return ray


def task_resources(limits: JobLimits) -> dict[str, Any]:
    """Ray task options for one job: the CPUs, memory and GPU the policy gives it, so the
    scheduler places it only on a node with that much free."""
    return {
        "num_cpus": limits.cpus,
        "num_gpus": 1 if limits.gpu else 0,
        "memory": int(limits.memory_gb * 2**30),
    }

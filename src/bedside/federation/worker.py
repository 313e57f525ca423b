"""What a site does for the federation, each step through the engine in its own sandbox.

``SiteWorker`` is built from a plain-dict :class:`Plan` (it travels to Flower's ClientApp
processes), opens its site's workspace, and offers the three jobs a site runs:

- :meth:`SiteWorker.train_round`: start from the global state, train ``local_epochs`` on the
  site's training split, hand back the trained tensors and the number of training texts;
- :meth:`SiteWorker.evaluate`: score a global state on the site's holdout (trusted scorer);
- :meth:`SiteWorker.local_only`: the site's own fine-tune with the same compute (the baseline).

With DP on, the noise multiplier is fixed before round 1 for the whole federation (see
:mod:`bedside.federation.dp`) and the steps taken so far are kept in
``WS/federation/RUN/privacy.json``, so each reply carries the epsilon spent up to that round.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bedside.federation import dp as dpmod
from bedside.federation.config import FederationConfig
from bedside.federation.exchange import State
from bedside.federation.sites import (
    Site,
    holdout_probs,
    read_update,
    round_manifest,
    run_job,
    score_site,
    site_root,
    stage,
)


@dataclass
class Plan:
    """Everything a site needs to take part, as plain data (picklable, JSON-able)."""

    config: dict[str, Any]  # FederationConfig.to_dict()
    manifest: dict[str, Any]  # the bundle's validated manifest
    classes: list[dict[str, str]]
    run: str  # run id: the folder under WS/federation/
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cfg(self) -> FederationConfig:
        return FederationConfig.from_dict(self.config)


class SiteWorker:
    def __init__(self, plan: Plan, site_name: str) -> None:
        self.plan = plan
        self.cfg = plan.cfg
        sc = next((s for s in self.cfg.sites if s.name == site_name), None)
        if sc is None:
            from bedside.errors import ConfigError

            raise ConfigError(
                f"site {site_name!r} is not in federation {self.cfg.name!r}; "
                f"its sites are {[s.name for s in self.cfg.sites]}."
            )
        self.site = Site.open(sc)
        self.root = site_root(self.site, plan.run)
        self.isolation = ""  # where the last job ran: sandbox tier A/B/C or "inprocess"

    # -- DP bookkeeping ---------------------------------------------------------------------

    def _train_rows(self) -> int:
        vf = float((self.plan.manifest.get("train") or {}).get("validation_fraction", 0.1))
        return max(1, round(self.site.n_train * (1.0 - vf)))

    def _batch_size(self) -> int:
        tr = {**(self.plan.manifest.get("train") or {}), **self.cfg.train}
        return int(tr.get("batch_size", 16))

    def dp_settings(self, rounds: int) -> dict[str, Any] | None:
        """Noise for ``rounds`` rounds of ``local_epochs`` at this site's sampling rate."""
        if self.cfg.dp is None:
            return None
        n, bs = self._train_rows(), self._batch_size()
        q = dpmod.sample_rate(n, bs)
        steps = dpmod.planned_steps(n, bs, rounds, self.cfg.local_epochs)
        sigma = dpmod.noise_multiplier(self.cfg.dp.epsilon, self.cfg.dp.delta, q, steps)
        return {
            "noise_multiplier": sigma,
            "max_grad_norm": self.cfg.dp.max_grad_norm,
            "sample_rate": q,
        }

    def _spent(self, dp: dict[str, Any], steps: int) -> float:
        assert self.cfg.dp is not None
        return dpmod.spent_epsilon(
            dp["noise_multiplier"], dp["sample_rate"], steps, self.cfg.dp.delta
        )

    # -- jobs -------------------------------------------------------------------------------

    def _job(
        self, name: str, epochs: int, federated: dict[str, Any], init: State | None, seed: int
    ) -> Path:
        d = stage(
            self.root / name,
            self.cfg.bundle,
            round_manifest(self.plan.manifest, self.cfg, epochs),
            self.plan.classes,
            self.site.corpus.train,
            self.site.corpus.holdout,
            seed=seed,
            threads=self.plan.threads,
            federated=federated,
            init=init,
        )
        self.isolation = run_job(self.site, d, self.cfg.runner)
        return d

    def train_round(self, state: State, server_round: int) -> tuple[State, dict[str, Any]]:
        """One local round from the global ``state``: (trained tensors, report)."""
        t0 = time.monotonic()
        fed: dict[str, Any] = {"train": True}
        if self.cfg.strategy == "fedprox":
            fed["proximal_mu"] = self.cfg.proximal_mu
        dp = self.dp_settings(self.cfg.rounds)
        if dp is not None:
            fed["dp"] = dp
        d = self._job(
            f"round-{server_round}", self.cfg.local_epochs, fed, state, self.cfg.seed + server_round
        )
        update, info = read_update(d)
        report: dict[str, Any] = {
            "examples": int(info["examples"]),
            "steps": int(info["steps"]),
            "wall_s": round(time.monotonic() - t0, 2),
            "isolation": self.isolation,
        }
        if dp is not None:
            ledger = self.root / "privacy.json"
            done = json.loads(ledger.read_text()) if ledger.is_file() else {"rounds": {}}
            done["rounds"][str(server_round)] = int(info["steps"])
            ledger.write_text(json.dumps(done))
            steps = sum(done["rounds"].values())
            report.update(
                {
                    "epsilon": round(self._spent(dp, steps), 4),
                    "noise_multiplier": dp["noise_multiplier"],
                }
            )
        shutil.rmtree(d / "checkpoints", ignore_errors=True)
        return update, report

    def evaluate(self, state: State, name: str = "global") -> dict[str, Any]:
        """Score ``state`` on the site's holdout (no training step)."""
        d = self._job(f"evaluate-{name}", 1, {"train": False}, state, self.cfg.seed)
        probs = holdout_probs(
            d, self.site.corpus.holdout["row_id"].astype(str).tolist(), self.site.classes
        )
        shutil.rmtree(d, ignore_errors=True)
        out = score_site(self.site, probs)
        out["isolation"] = self.isolation
        return out

    def local_only(self) -> dict[str, Any]:
        """The site alone: the same recipe for ``rounds * local_epochs`` epochs (same compute,
        same DP target), scored on its holdout."""
        t0 = time.monotonic()
        epochs = self.cfg.rounds * self.cfg.local_epochs
        fed: dict[str, Any] = {"train": True}
        dp = self.dp_settings(self.cfg.rounds)
        if dp is not None:
            fed["dp"] = dp
        d = self._job("local-only", epochs, fed, None, self.cfg.seed)
        probs = holdout_probs(
            d, self.site.corpus.holdout["row_id"].astype(str).tolist(), self.site.classes
        )
        _, info = read_update(d)
        out = score_site(self.site, probs)
        out["wall_s"] = round(time.monotonic() - t0, 2)
        if dp is not None:
            out["epsilon"] = round(self._spent(dp, int(info["steps"])), 4)
        shutil.rmtree(d, ignore_errors=True)
        return out

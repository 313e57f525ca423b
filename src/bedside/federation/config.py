"""A federation as its sites' owners declare it: ``federation.toml``.

Example::

    [federation]
    name = "three-hospitals"
    bundle = "vendor-bundle/"          # a bedside bundle (bedside.toml + safetensors)
    rounds = 3
    strategy = "fedavg"                # or "fedprox" (with proximal_mu)
    exchange = "lora"                  # LoRA adapters + head (small), or "full" weights
    share = ["model-updates", "aggregate-metrics"]   # never records, never per-record outputs

    [federation.dp]                    # optional: DP-SGD (Opacus) in every site's training
    epsilon = 8.0
    delta = 1e-5

    [[site]]
    name = "north"
    workspace = "/srv/bedside-north"

Relative paths are taken from the config file's folder.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bedside.errors import ConfigError

STRATEGIES = ("fedavg", "fedprox")
EXCHANGES = ("lora", "full")
RUNNERS = ("sandbox", "inprocess")
# What a site may agree to send out of its workspace. Records and per-record outputs are not on
# the list, so no config can ask for them.
SHAREABLE = ("model-updates", "aggregate-metrics")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
TRAIN_KEYS = ("learning_rate", "batch_size", "max_length", "seed", "class_weighting")


@dataclass
class DPConfig:
    """DP-SGD in local training: the owner's target (epsilon, delta); Opacus picks the noise."""

    epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and 0 < self.epsilon <= 100):
            raise ConfigError(f"dp.epsilon must be in (0, 100], got {self.epsilon!r}.")
        if not (isinstance(self.delta, int | float) and 0 < self.delta < 0.1):
            raise ConfigError(
                f"dp.delta must be in (0, 0.1), got {self.delta!r}; "
                "take it below 1 / (records per site), e.g. 1e-5."
            )
        if not (isinstance(self.max_grad_norm, int | float) and self.max_grad_norm > 0):
            raise ConfigError(f"dp.max_grad_norm must be > 0, got {self.max_grad_norm!r}.")


@dataclass
class SiteConfig:
    name: str
    workspace: Path

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"site name {self.name!r} must be 1-40 lowercase letters, digits, '-' or '_'."
            )
        self.workspace = Path(self.workspace)


@dataclass
class FederationConfig:
    """Validated federation settings (see the module docstring for the TOML form)."""

    name: str
    bundle: Path
    sites: list[SiteConfig]
    rounds: int = 3
    strategy: str = "fedavg"
    proximal_mu: float = 0.01
    exchange: str = "lora"
    local_epochs: int = 1
    min_sites: int | None = None  # updates a round needs; default: all sites but one (>= 2)
    seed: int = 0
    runner: str = "sandbox"
    share: list[str] = field(default_factory=lambda: list(SHAREABLE))
    dp: DPConfig | None = None
    train: dict[str, Any] = field(default_factory=dict)  # overrides of the bundle's [train]
    round_timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"federation name {self.name!r} must be 1-40 of [a-z0-9_-].")
        self.bundle = Path(self.bundle)
        if len(self.sites) < 2:
            raise ConfigError(
                f"a federation needs at least 2 sites, found {len(self.sites)}.",
                hint="Add [[site]] tables with a name and a workspace each.",
            )
        names = [s.name for s in self.sites]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ConfigError(f"site names must be unique; repeated: {', '.join(dupes)}.")
        for key, val, lo, hi in (
            ("rounds", self.rounds, 1, 100),
            ("local_epochs", self.local_epochs, 1, 20),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or not lo <= val <= hi:
                raise ConfigError(f"{key} must be an integer in [{lo}, {hi}], got {val!r}.")
        for key, choice, allowed in (
            ("strategy", self.strategy, STRATEGIES),
            ("exchange", self.exchange, EXCHANGES),
            ("runner", self.runner, RUNNERS),
        ):
            if choice not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {choice!r}.")
        if not (isinstance(self.proximal_mu, int | float) and 0 <= self.proximal_mu <= 10):
            raise ConfigError(f"proximal_mu must be in [0, 10], got {self.proximal_mu!r}.")
        if self.min_sites is None:
            self.min_sites = max(2, len(self.sites) - 1)
        if not isinstance(self.min_sites, int) or not 1 <= self.min_sites <= len(self.sites):
            raise ConfigError(
                f"min_sites must be in [1, {len(self.sites)}] (the number of sites), "
                f"got {self.min_sites!r}."
            )
        if bad := sorted(set(self.share) - set(SHAREABLE)):
            raise ConfigError(
                f"sites may share {', '.join(SHAREABLE)} only; refused: {', '.join(bad)}.",
                hint="Records and per-record outputs never leave a site.",
            )
        if "model-updates" not in self.share:
            raise ConfigError("federated training needs share to include 'model-updates'.")
        if unknown := sorted(set(self.train) - set(TRAIN_KEYS)):
            raise ConfigError(
                f"[federation.train] knows {', '.join(TRAIN_KEYS)}; unknown: {', '.join(unknown)}."
            )
        if self.dp is not None and self.strategy == "fedprox":
            raise ConfigError(
                "DP-SGD clips per-example gradients of the data loss only, so FedProx's proximal "
                "term would go unclipped and unnoised; found strategy 'fedprox' with [federation.dp].",
                hint="Use strategy = 'fedavg' with DP.",
            )
        if not (isinstance(self.round_timeout_s, int | float) and self.round_timeout_s > 0):
            raise ConfigError(f"round_timeout_s must be > 0, got {self.round_timeout_s!r}.")

    @property
    def method(self) -> str:
        """The engine's ``[train] method`` for the exchanged state."""
        return self.exchange

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bundle"] = str(self.bundle)
        d["sites"] = [{"name": s.name, "workspace": str(s.workspace)} for s in self.sites]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: Path | None = None) -> FederationConfig:
        d = dict(d)
        base = base or Path.cwd()

        def resolve(p: Any) -> Path:
            path = Path(str(p)).expanduser()
            return path if path.is_absolute() else (base / path)

        sites = d.pop("sites", None) or []
        if not isinstance(sites, list):
            raise ConfigError("sites must be a list of {name, workspace} tables.")
        dp = d.pop("dp", None)
        if "bundle" not in d or "name" not in d:
            raise ConfigError("[federation] needs a name and a bundle path.")
        known = {f for f in cls.__dataclass_fields__}
        if unknown := sorted(set(d) - known):
            raise ConfigError(f"unknown [federation] key(s): {', '.join(unknown)}.")
        d["bundle"] = resolve(d["bundle"])
        try:
            site_objs = [
                SiteConfig(name=s["name"], workspace=resolve(s["workspace"])) for s in sites
            ]
        except (KeyError, TypeError) as e:
            raise ConfigError(f"each [[site]] needs a name and a workspace ({e}).") from None
        dp_obj = DPConfig(**dp) if isinstance(dp, dict) else None
        return cls(sites=site_objs, dp=dp_obj, **d)

    @classmethod
    def load(cls, path: Path) -> FederationConfig:
        """Read ``federation.toml``: a ``[federation]`` table and ``[[site]]`` tables."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"federation config {path} not found.") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"federation config {path} is not valid TOML: {e}.") from None
        fed = dict(raw.get("federation") or {})
        fed["sites"] = raw.get("site") or []
        return cls.from_dict(fed, base=path.parent)

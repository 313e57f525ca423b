"""Federation setup: the config's rules, differing classes refused with the site named, the
exchanged state (LoRA much smaller than full weights), DP accounting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bedside.errors import ConfigError
from bedside.federation import dp
from bedside.federation.config import FederationConfig
from tests.federation.conftest import MIXES, fed_config, site_frame, write_site

pytestmark = pytest.mark.torch


def test_config_loads_toml_with_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "federation.toml").write_text(
        """
[federation]
name = "net"
bundle = "bundle"
rounds = 2
strategy = "fedprox"
proximal_mu = 0.1

[[site]]
name = "north"
workspace = "ws-north"

[[site]]
name = "south"
workspace = "/srv/south"
"""
    )
    cfg = FederationConfig.load(tmp_path / "federation.toml")
    assert cfg.bundle == tmp_path / "bundle" and cfg.sites[0].workspace == tmp_path / "ws-north"
    assert cfg.min_sites == 2 and cfg.strategy == "fedprox" and cfg.exchange == "lora"
    assert FederationConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sites": [{"name": "a", "workspace": "x"}]}, "at least 2 sites"),
        ({"sites": [{"name": "a", "workspace": "x"}] * 2}, "repeated: a"),
        ({"share": ["model-updates", "records"]}, "refused: records"),
        ({"share": ["aggregate-metrics"]}, "needs share to include 'model-updates'"),
        ({"strategy": "fedprox", "dp": {"epsilon": 3.0}}, "use strategy = 'fedavg'"),
        ({"exchange": "adapters"}, "exchange must be one of lora, full"),
        ({"rounds": 0}, "rounds must be an integer in [1, 100]"),
        ({"dp": {"epsilon": 0}}, "dp.epsilon must be in (0, 100]"),
        ({"train": {"epochs": 3}}, "unknown: epochs"),
        ({"min_sites": 5}, "min_sites must be in [1, 2]"),
    ],
)
def test_config_refuses_bad_settings(change: dict, message: str) -> None:
    base = {
        "name": "net",
        "bundle": "b",
        "sites": [{"name": "a", "workspace": "x"}, {"name": "b", "workspace": "y"}],
    }
    with pytest.raises(ConfigError) as e:
        FederationConfig.from_dict({**base, **change})
    assert message.lower() in str(e.value).lower()


def test_a_site_with_other_classes_is_refused_at_setup(
    fed_bundle: Path, site_dirs: list[Path], tmp_path: Path
) -> None:
    from bedside.federation.run import prepare

    frame = site_frame(MIXES[0], seed=11)
    frame = frame[frame["label"] != "general pathological conditions"]
    odd = write_site(tmp_path / "odd", frame, classes=sorted(set(frame["label"])))
    with pytest.raises(ConfigError, match="site 'south' has classes that differ from site 'north'"):
        prepare(fed_config(fed_bundle, [site_dirs[0], odd]))


def test_lora_exchanges_a_fraction_of_the_full_weights(
    fed_bundle: Path, site_dirs: list[Path]
) -> None:
    from bedside.federation.exchange import nbytes
    from bedside.federation.run import initial_state, prepare

    lora = initial_state(prepare(fed_config(fed_bundle, site_dirs, exchange="lora"))[0])
    full = initial_state(prepare(fed_config(fed_bundle, site_dirs, exchange="full"))[0])
    assert any("lora_A" in n for n in lora) and not any("lora" in n for n in full)
    assert nbytes(lora) < 0.3 * nbytes(full)


def test_noise_is_chosen_for_the_whole_federation_and_spent_epsilon_tracks_steps() -> None:
    q, steps = dp.sample_rate(900, 16), dp.planned_steps(900, 16, rounds=3, local_epochs=1)
    assert steps == 3 * 56
    sigma = {eps: dp.noise_multiplier(eps, 1e-5, q, steps) for eps in (1.0, 3.0, 8.0)}
    assert sigma[1.0] > sigma[3.0] > sigma[8.0] > 0
    for eps, s in sigma.items():
        spent = dp.spent_epsilon(s, q, steps, 1e-5)
        assert 0.9 * eps <= spent <= eps * 1.001
        assert dp.spent_epsilon(s, q, steps // 3, 1e-5) < spent  # one round of three spends less
    assert dp.spent_epsilon(1.0, q, 0, 1e-5) == 0.0


def test_local_only_with_dp_reports_the_epsilon_it_spent(
    fed_bundle: Path, site_dirs: list[Path], clean_env: None
) -> None:
    from bedside.federation.run import prepare
    from bedside.federation.worker import SiteWorker

    cfg = fed_config(
        fed_bundle, site_dirs, exchange="full", rounds=1, local_epochs=1, dp={"epsilon": 3.0}
    )
    plan, _ = prepare(FederationConfig.from_dict(cfg.to_dict()))
    out = SiteWorker(plan, "north").local_only()
    assert 0 < out["epsilon"] <= 3.0 * 1.001
    assert 0 <= out["macro_f1"] <= 1 and out["n"] > 0 and len(out["replicates"]) == 1000

"""Differential privacy for a federation: the noise each site adds, and the epsilon it spent.

Each site trains with DP-SGD (Opacus; see :mod:`bedside.engine.federated`): per-example
gradients clipped to ``max_grad_norm``, Gaussian noise ``sigma * max_grad_norm`` added to their
sum, batches Poisson-sampled at rate ``q = batch_size / rows``. One site's records are seen in
every round, so its privacy loss composes over ``rounds * local_epochs * round(1 / q)`` steps: the
noise multiplier is chosen once, before round 1, so that the whole federation spends the owner's
target epsilon at delta (RDP accountant), and the epsilon actually spent is recomputed from the
steps the site really took. Sites hold disjoint records, so a record's guarantee is its own site's
epsilon; the federation reports the largest.

Example::

    sigma = noise_multiplier(8.0, 1e-5, sample_rate(900, 16), planned_steps(900, 16, 3, 1))
    spent_epsilon(sigma, sample_rate(900, 16), 3 * 56, 1e-5)   # <= 8.0
"""

from __future__ import annotations

import warnings

from bedside.errors import ConfigError

INSTALL = "pip install -e '.[federated]'"


def sample_rate(n_rows: int, batch_size: int) -> float:
    """Poisson sampling rate of a site's DP-SGD batches."""
    return min(1.0, batch_size / max(1, n_rows))


def steps_per_epoch(q: float) -> int:
    return max(1, round(1.0 / q))


def planned_steps(n_rows: int, batch_size: int, rounds: int, local_epochs: int) -> int:
    """DP-SGD steps a site takes over the whole federation."""
    return rounds * local_epochs * steps_per_epoch(sample_rate(n_rows, batch_size))


def _opacus() -> tuple[object, object]:
    try:
        from opacus.accountants import RDPAccountant
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError as e:
        raise ConfigError(
            f"differential privacy needs Opacus, which is not installed ({e.name}).",
            hint=f"Install it with `{INSTALL}`.",
        ) from None
    return RDPAccountant, get_noise_multiplier


def noise_multiplier(epsilon: float, delta: float, q: float, steps: int) -> float:
    """The smallest noise multiplier that keeps ``steps`` steps at rate ``q`` within
    ``(epsilon, delta)`` (RDP accountant)."""
    _, get_noise = _opacus()
    with warnings.catch_warnings():  # "optimal order is the largest alpha": a looser bound only
        warnings.simplefilter("ignore", UserWarning)
        return float(
            get_noise(  # type: ignore[operator]
                target_epsilon=epsilon, target_delta=delta, sample_rate=q, steps=steps
            )
        )


def spent_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """Epsilon spent after ``steps`` DP-SGD steps of noise ``sigma`` at rate ``q``."""
    if steps <= 0:
        return 0.0
    accountant_cls, _ = _opacus()
    acc = accountant_cls()  # type: ignore[operator]
    acc.history = [(sigma, q, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(acc.get_epsilon(delta))

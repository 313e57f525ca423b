"""How much holdout information a probing contributor learns: plain release vs Ladder vs split.

The attack is the boosting attack of Blum & Hardt (ICML 2015, section 3): the holdout has n
binary labels the contributor never sees. It submits k probes, each a random labelling (every
probe flips a random half of the labels of the one before it), reads the score the leaderboard
releases for each, keeps the probes that looked better than chance, and submits their majority
vote as its final model. The labels are random, so no model does better than 0.5 on new data:
whatever the final model scores above 0.5 *on the rows the ranking uses* is holdout information
the releases leaked (the "leak", in accuracy points).

Settings, all with the same k submissions:

* plain: every score released exactly (rounded to ``decimals``, as ``score_decimals`` does);
* ladder: the Ladder's released score (``bedside.leaderboard.ladder``, step ``eta``); the
  attacker keeps the probes that moved its released score (its best rule here; keeping those
  released above 0.5 is also tried and the larger leak is reported);
* public/private: exact scores on the public part (``public_fraction`` of the rows); the final
  ranking uses the private rest, so the leak is measured there (the public part's own
  leak is printed beside it: that is what a public-only board would show);
* both: Ladder on the public part, ranking on the private part.

numpy only; the default run takes a few seconds::

    python bench/holdout_probing.py                    # n=4000 rows, k=1000 probes, 20 repeats
    python bench/holdout_probing.py --n 2000 --k 400 --repeats 10 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    from bedside.leaderboard.ladder import ladder
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from bedside.leaderboard.ladder import ladder


def _accuracy(probes: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (probes == y[None, :]).mean(axis=1)


def _majority(probes: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not keep.any():
        return rng.integers(0, 2, size=probes.shape[1])
    votes = probes[keep].mean(axis=0)
    ties = votes == 0.5
    out = (votes > 0.5).astype(np.int64)
    out[ties] = rng.integers(0, 2, size=int(ties.sum()))
    return out


def _laddered(scores: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    steps = ladder(scores.tolist(), step)
    return np.array([s.released for s in steps]), np.array([s.improved for s in steps])


def one_run(
    n: int, k: int, rng: np.random.Generator, step: float, public_fraction: float, decimals: int
) -> dict[str, float]:
    """Leaks of one attack (final model's accuracy minus 0.5 on the rows that rank it)."""
    y = rng.integers(0, 2, size=n)
    probes = rng.integers(0, 2, size=(k, n))
    public = rng.random(n) < public_fraction
    exact = _accuracy(probes, y)
    plain = np.round(exact, decimals)

    def leak(final: np.ndarray, rows: np.ndarray | None = None) -> float:
        r = slice(None) if rows is None else rows
        return float((final[r] == y[r]).mean() - 0.5)

    out = {"plain": leak(_majority(probes, plain > 0.5, rng))}
    released, improved = _laddered(exact, step)
    out["ladder"] = max(
        leak(_majority(probes, improved, rng)), leak(_majority(probes, released > 0.5, rng))
    )
    pub = np.round(_accuracy(probes[:, public], y[public]), decimals)
    final = _majority(probes, pub > 0.5, rng)
    out["split_private"] = leak(final, ~public)
    out["split_public"] = leak(final, public)
    released, improved = _laddered(_accuracy(probes[:, public], y[public]), step)
    out["both_private"] = max(
        leak(_majority(probes, improved, rng), ~public),
        leak(_majority(probes, released > 0.5, rng), ~public),
    )
    return out


def simulate(
    n: int = 4000,
    k: int = 1000,
    repeats: int = 20,
    seed: int = 0,
    step: float = 0.01,
    public_fraction: float = 0.3,
    decimals: int = 3,
) -> dict[str, Any]:
    """Mean and standard deviation of each setting's leak over ``repeats`` attacks."""
    rng = np.random.default_rng(seed)
    runs = [one_run(n, k, rng, step, public_fraction, decimals) for _ in range(repeats)]
    keys = list(runs[0])
    n_private = round(n * (1 - public_fraction))
    return {
        "n": n,
        "k": k,
        "repeats": repeats,
        "seed": seed,
        "step": step,
        "public_fraction": public_fraction,
        "decimals": decimals,
        # one standard deviation of a random model's accuracy on the private rows: the noise
        # floor a leak must clear to mean anything
        "private_noise_sd": 0.5 / math.sqrt(n_private),
        "leak_mean": {key: float(np.mean([r[key] for r in runs])) for key in keys},
        "leak_sd": {key: float(np.std([r[key] for r in runs], ddof=1)) for key in keys},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="holdout rows")
    ap.add_argument("--k", type=int, default=1000, help="submissions (probes) per setting")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step", type=float, default=0.01, help="the Ladder's step")
    ap.add_argument("--public-fraction", type=float, default=0.3)
    ap.add_argument("--decimals", type=int, default=3, help="plain release precision")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = simulate(a.n, a.k, a.repeats, a.seed, a.step, a.public_fraction, a.decimals)
    res["seconds"] = round(time.perf_counter() - t0, 2)
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(
        f"boosting attack: n={a.n} holdout rows, k={a.k} submissions, {a.repeats} repeats, "
        f"Ladder step {a.step}, public fraction {a.public_fraction} ({res['seconds']} s)"
    )
    print("setting                          leak (accuracy above 0.5 on the ranking rows)")
    names = {
        "plain": "plain release (3 decimals)",
        "ladder": f"Ladder (step {a.step})",
        "split_public": "public part (what it shows)",
        "split_private": "public/private: private part",
        "both_private": "Ladder + private part",
    }
    for key, label in names.items():
        m, sd = res["leak_mean"][key], res["leak_sd"][key]
        print(f"  {label:<31}{m:+.4f} ± {sd:.4f}")
    print(f"  (noise floor on the private part: one sd = {res['private_noise_sd']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

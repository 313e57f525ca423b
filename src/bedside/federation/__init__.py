"""Federated fine-tuning across bedside workspaces with Flower, optionally with DP-SGD.

    config.py    FederationConfig: the sites, what they share, strategy, exchanged state, DP
    sites.py     a site: its workspace, class check, job staging, engine runs, trusted scoring
    worker.py    what a site does for a round: train from the global state, evaluate, local-only
    exchange.py  the exchanged tensors and the server's checks on every update
    strategy.py  Flower's FedAvg / FedProx with those checks, drop-outs and a round log
    apps.py      Flower's ServerApp and ClientApp
    flower_app.py  the Flower App entry module of deployment mode (apps from a plan file)
    deploy.py    deployment mode on one machine: SuperLink + SuperNodes on loopback, TLS, flwr run
    tls.py       the deployment's private CA and SuperLink certificate (cryptography)
    dp.py        noise multiplier for a target epsilon, epsilon spent (Opacus' RDP accountant)
    board.py     the federation's leaderboard: per-site and sample-weighted macro-F1 with CIs
    run.py       setup, simulation or deployment, baselines (local-only, pooled), results.json
    demo.py      three sites from the embedded corpus (bedside federation demo)

Flower and Opacus are the ``federated`` extra (``pip install -e '.[federated]'``); nothing here
imports them until a federation runs.
"""

__all__ = ["FederationConfig"]

from bedside.federation.config import FederationConfig

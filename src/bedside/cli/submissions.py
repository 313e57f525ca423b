"""`bedside check`, `bedside submit`, `bedside submissions` and `bedside contributor ...`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import typer

from bedside.cli.common import (
    FORMAT_OPTION,
    Format,
    console,
    emit,
    new_group,
    print_json,
    workspace,
)
from bedside.config import Policy
from bedside.errors import BedsideError, BundleError

contributor_app = new_group("Manage contributors: tokens, submission limits, compute budgets.")


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def _pf(x: Any) -> str:
    return f"{float(x):.3g}"


def _smoke(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Run the engine's smoke check if that part is installed; say so if it is not."""
    try:
        from bedside.engine.smoke import smoke_check
    except (ImportError, AttributeError) as e:
        return {"ran": False, "reason": f"smoke run unavailable in this installation ({e})."}
    with tempfile.TemporaryDirectory(prefix="bedside-smoke-") as tmp:
        try:
            result = smoke_check(root, manifest, Path(tmp))
        except BedsideError:
            raise
        except Exception as e:  # the vendor's model failed in a way the engine did not classify
            raise BundleError(
                f"the smoke run failed: {type(e).__name__}: {e}",
                hint="Fix the model and run `bedside check` again.",
            ) from e
    return {"ran": True, **(result if isinstance(result, dict) else {"result": result})}


def check(
    bundle: Path = typer.Argument(..., help="Bundle directory, .zip or .tar.gz."),
    fmt: Format = FORMAT_OPTION,
    no_smoke: bool = typer.Option(
        False, "--no-smoke", help="Skip the smoke run (phase 1 + a few training steps)."
    ),
) -> None:
    """Self-check a bundle before submitting: every intake rule, a compute estimate, a smoke run.

    Needs no workspace. The estimate uses a reference corpus the size of the dev set
    (1,510 train / 378 holdout abstracts of ~180 words); the owner's corpus decides the real one.
    """
    from bedside.submissions.bundle import BundleLimits
    from bedside.submissions.flops import REFERENCE_ROWS, estimate_pflops, reference_token_counts
    from bedside.submissions.validate import checked_bundle

    policy = Policy()
    with checked_bundle(bundle, limits=BundleLimits.from_mb(policy.max_bundle_mb)) as report:
        manifest = report.manifest.to_dict()
        train, holdout = reference_token_counts()
        est = estimate_pflops(report.n_params, manifest, train, holdout)
        memory = _decoder_memory(report, manifest, est, policy)  # refuses what cannot fit
        smoke = (
            {"ran": False, "reason": "skipped (--no-smoke)."}
            if no_smoke
            else _smoke(report.root, manifest)
        )
    smoke_ok = all(v.get("ok", True) for v in smoke.values() if isinstance(v, dict))
    data = {
        "ok": smoke_ok,
        "bundle": report.to_dict(),
        "estimate": est,
        "smoke": smoke,
        "reference_corpus": {"train_rows": REFERENCE_ROWS[0], "holdout_rows": REFERENCE_ROWS[1]},
        "default_budget_pflops": policy.default_budget_pflops,
    }
    if memory is not None:
        data["memory"] = memory
    if fmt == Format.json:
        print_json(data)
    else:
        _print_check(report, manifest, est, smoke, policy)
        if memory is not None:
            m, t = memory["estimate"], memory["seconds"]
            _say(
                f"  memory         ~{m['phase1_gb']:.1f} GB phase 1, ~{m['phase2_gb']:.1f} GB phase 2 "
                f"(batch {m['batch_size']} x {m['max_length']} tokens"
                f"{', gradient checkpointing' if m['gradient_checkpointing'] else ''}; "
                f"job limit {memory['limit_gb']:g} GB)"
            )
            _say(
                f"  time           ~{t['phase1_s'] / 60:.0f} + {t['phase2_s'] / 60:.0f} min on "
                f"{memory['threads']} CPU threads (a rough rate; the machine decides)"
            )
    if not smoke_ok:
        raise BundleError(
            "the bundle passed intake, but its smoke run failed (see above).",
            hint="Fix the model or its recipe and run `bedside check` again.",
        )


def _decoder_memory(
    report: Any, manifest: dict[str, Any], est: dict[str, Any], policy: Policy
) -> dict[str, Any] | None:
    """Decoders: the memory and time estimate (engine/memory.py, no torch); a recipe whose
    phases cannot fit the policy's memory limit is refused here, before any smoke run."""
    if manifest["kind"] != "causal-lm":
        return None
    from bedside.engine.memory import advice, estimate, estimate_seconds
    from bedside.submissions.validate import load_json

    cfg = load_json(report.root, "config.json")
    mem = estimate(cfg, report.n_params, manifest)
    limit = policy.limits.memory_gb
    if not mem.fits(limit):
        raise BundleError(
            f"the recipe needs ~{max(mem.phase1_gb, mem.phase2_gb):.1f} GB (phase 2: weights "
            f"{mem.weights_gb:.1f}, optimiser state {mem.training_state_gb:.1f}, activations "
            f"{mem.activations_gb:.1f} at batch {mem.batch_size} x {mem.max_length} tokens); a job "
            f"gets {limit:g} GB.",
            hint=advice(mem, limit),
        )
    threads = policy.limits.cpus
    return {
        "estimate": mem.to_dict(),
        "limit_gb": limit,
        "threads": threads,
        "seconds": estimate_seconds(est, threads, checkpointing=mem.gradient_checkpointing),
    }


def _print_check(
    report: Any,
    manifest: dict[str, Any],
    est: dict[str, Any],
    smoke: dict[str, Any],
    policy: Policy,
) -> None:
    from bedside.submissions.flops import REFERENCE_ROWS

    tr = manifest["train"]
    p1 = manifest["phase1"]
    _say(f"bundle OK: {report.manifest.name} ({report.manifest.kind}, {report.model_type})")
    _say(
        f"  parameters     {report.n_params:,} ({', '.join(report.weights.dtypes)}); {report.total_bytes / 2**20:.1f} MB in {len(report.files)} files"
    )
    _say(f"  content hash   {report.content_hash}")
    extra = f", pooling={p1['pooling']}" if p1["pooling"] else ""
    _say(f"  phase 1        {p1['method']}{extra}")
    recipe = f"{tr['method']}, {tr['epochs']} epochs, lr {tr['learning_rate']:g}, batch {tr['batch_size']}, max_length {tr['max_length']}"
    if tr["method"] == "lora":
        recipe += f", r={tr['lora']['r']} alpha={tr['lora']['alpha']}"
    if tr.get("objective") == "label-tokens":
        recipe += ", LoRA on the label tokens" if tr["method"] == "lora" else ", label tokens"
    _say(f"  phase 2        {recipe}")
    _say(
        f"  compute        ~{_pf(est['phase1'])} + {_pf(est['phase2'])} = {_pf(est['total'])} PFLOPs on a "
        f"{REFERENCE_ROWS[0]}/{REFERENCE_ROWS[1]}-row reference corpus (default budget {policy.default_budget_pflops:g})"
    )
    for w in report.warnings:
        _say(f"  warning: {w}")
    if smoke.get("ran"):
        phases = {k: v for k, v in smoke.items() if isinstance(v, dict) and "ok" in v}
        for name, r in phases.items():
            status = "passed" if r["ok"] else f"FAILED: {r.get('error')}"
            _say(f"  smoke {name:<8} {status} ({float(r.get('seconds') or 0):.1f} s)")
    else:
        _say(f"  smoke run      {smoke['reason']}")


def submit(
    ctx: typer.Context,
    bundle: Path = typer.Argument(..., help="Bundle directory, .zip or .tar.gz."),
    contributor: str = typer.Option(
        ..., "--contributor", "-c", help="Contributor the submission counts against."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Submit a bundle on behalf of a contributor (owner, local): validate, store, queue."""
    from bedside.submissions.intake import submit_bundle

    sub = submit_bundle(workspace(ctx), bundle, contributor, actor="owner")
    if fmt == Format.json:
        print_json(sub)
        return
    if sub["duplicate"]:
        _say(
            f"this bundle is already submission #{sub['id']} of {sub['contributor']} ({sub['status']}); "
            "not counted again."
        )
        return
    _say(
        f"accepted: submission #{sub['id']} {sub['name']} ({sub['kind']}) for {sub['contributor']}; "
        f"estimate {_pf(sub['estimate']['total'])} PFLOPs; jobs {', '.join(map(str, sub['jobs']))} queued."
    )
    for w in sub["warnings"]:
        _say(f"  warning: {w}")


def submissions(
    ctx: typer.Context,
    contributor: str = typer.Option(
        None, "--contributor", "-c", help="Only this contributor's submissions."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List submissions, newest first."""
    from bedside.submissions.contributors import get_contributor
    from bedside.submissions.intake import list_submissions

    ws = workspace(ctx)
    cid = get_contributor(ws, contributor)["id"] if contributor else None
    subs = list_submissions(ws, cid)
    rows = [
        (
            s["id"],
            s["contributor"],
            s["name"],
            s["kind"],
            s["status"],
            "yes" if s["counted"] else "no",
            _pf(s["estimate"].get("total", 0)),
            str(s["created_at"])[:10],
        )
        for s in subs
    ]
    columns = ["#", "contributor", "name", "kind", "status", "counted", "PFLOPs", "created"]
    emit(fmt, subs, columns, rows, title="submissions")


# -- contributors ------------------------------------------------------------------------------
_COLUMNS = [
    "name",
    "submissions",
    "budget PFLOPs",
    "used",
    "reserved",
    "left",
    "revoked",
    "token prefix",
]


def _row(c: dict[str, Any]) -> list[Any]:
    return [
        c["name"],
        f"{c['submissions_used']}/{c['max_submissions']}",
        _pf(c["budget_pflops"]),
        _pf(c["used_pflops"]),
        _pf(c["reserved_pflops"]),
        _pf(c["budget_left_pflops"]),
        "yes" if c["revoked"] else "no",
        c["token_prefix"],
    ]


@contributor_app.command("add")
def contributor_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Short name, e.g. acme-health."),
    max_submissions: int = typer.Option(
        None,
        "--submissions",
        "--max-submissions",
        help="Counted submissions allowed (default: policy).",
    ),
    budget_pflops: float = typer.Option(
        None, "--budget-pflops", help="Compute budget in PFLOPs (default: policy)."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Add a contributor and print their API token (shown once)."""
    from bedside.submissions.contributors import add_contributor

    row, token = add_contributor(workspace(ctx), name, max_submissions, budget_pflops)
    if fmt == Format.json:
        print_json({**row, "token": token})
        return
    _say(
        f"contributor {name} added: {row['max_submissions']} submissions, {_pf(row['budget_pflops'])} PFLOPs"
    )
    _say(f"API token (shown once; give it to {name} over a safe channel): {token}")


@contributor_app.command("show")
def contributor_show(
    ctx: typer.Context, name: str = typer.Argument(...), fmt: Format = FORMAT_OPTION
) -> None:
    """Show one contributor's limits and usage."""
    from bedside.submissions.contributors import get_contributor

    c = get_contributor(workspace(ctx), name)
    emit(fmt, c, ["key", "value"], [(k, v) for k, v in c.items()], title=f"contributor {name}")


@contributor_app.command("list")
def contributor_list(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """List contributors with their usage."""
    from bedside.submissions.contributors import list_contributors

    cs = list_contributors(workspace(ctx))
    emit(fmt, cs, _COLUMNS, [_row(c) for c in cs], title="contributors")


@contributor_app.command("set")
def contributor_set(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    max_submissions: int = typer.Option(
        None, "--submissions", "--max-submissions", help="New submission limit."
    ),
    budget_pflops: float = typer.Option(
        None, "--budget-pflops", help="New compute budget in PFLOPs."
    ),
    revoked: bool = typer.Option(None, "--revoked/--no-revoked", help="Revoke or restore access."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Change a contributor's limit, budget or access."""
    from bedside.submissions.contributors import update_contributor

    c = update_contributor(
        workspace(ctx),
        name,
        max_submissions=max_submissions,
        budget_pflops=budget_pflops,
        revoked=revoked,
    )
    emit(fmt, c, _COLUMNS, [_row(c)], title="contributor updated")


@contributor_app.command("revoke")
def contributor_revoke(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Revoke a contributor: their token stops working and they cannot submit."""
    from bedside.submissions.contributors import update_contributor

    update_contributor(workspace(ctx), name, revoked=True)
    _say(f"contributor {name} revoked; their token no longer works.")


@contributor_app.command("rotate-token")
def contributor_rotate(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Issue a new API token for a contributor (the old one stops working); shown once."""
    from bedside.submissions.contributors import rotate_token

    token = rotate_token(workspace(ctx), name)
    _say(f"new API token for {name} (shown once): {token}")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("submit")(submit)
    app.command("submissions")(submissions)
    app.add_typer(contributor_app, name="contributor")

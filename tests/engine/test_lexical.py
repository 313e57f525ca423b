"""The TF-IDF + LR recipe as plain arrays (engine/lexical.py): the same features and
probabilities as scikit-learn's fitted objects, a lossless save/load, refusal of damaged files,
and the blend's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bedside.engine import lexical
from bedside.engine.decision import log_softmax
from bedside.errors import BundleError, JobError
from bedside.submissions.manifest import TrainConfig

TEXTS = [
    "tumour cells in the breast",
    "breast tumour mass, carcinoma",
    "heart valve failure",
    "the heart valve and coronary artery",
    "seizure and epilepsy in children",
    "epilepsy seizure frequency",
    "colon and liver disease",
    "liver cirrhosis, colon polyps",
] * 2
Y = [0, 0, 1, 1, 2, 2, 3, 3] * 2


def test_features_and_probabilities_match_sklearn() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    r = lexical.RECIPE
    vec = TfidfVectorizer(
        ngram_range=tuple(r["ngram_range"]), sublinear_tf=True, min_df=2, strip_accents="unicode"
    )
    x = vec.fit_transform(TEXTS)
    lr = LogisticRegression(
        C=r["C"], class_weight=r["class_weight"], solver=r["solver"], max_iter=r["max_iter"]
    ).fit(x, Y)
    model = lexical.fit_tfidf(TEXTS, Y, n_classes=5)
    new = ["a breast tumour", "heart failure and epilepsy", "nothing known here", "liver liver"]
    assert np.allclose(model.features(new).toarray(), vec.transform(new).toarray(), atol=1e-12)
    want = lr.predict_log_proba(vec.transform(new))
    got = model.log_proba(new)
    assert np.allclose(got[:, :4], want + np.log(np.exp(got[:, :4]).sum(1, keepdims=True)))
    # class 4 had no training rows: it never wins and gets (almost) no probability
    assert (got.argmax(1) != 4).all() and np.exp(got[:, 4]).max() < 1e-9


def test_binary_problems_keep_sklearn_probabilities() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, y = TEXTS[:4] * 2, [0, 0, 2, 2] * 2
    model = lexical.fit_tfidf(texts, y, n_classes=3)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, strip_accents="unicode")
    lr = LogisticRegression(C=4.0, class_weight="balanced", solver="newton-cg").fit(
        vec.fit_transform(texts), y
    )
    p = np.exp(model.log_proba(["breast tumour", "heart valve"]))
    want = lr.predict_proba(vec.transform(["breast tumour", "heart valve"]))
    assert np.allclose(p[:, [0, 2]], want, atol=1e-6) and p[:, 1].max() < 1e-9


def test_save_load_roundtrip_and_damage(tmp_path: Path) -> None:
    model = lexical.fit_tfidf(TEXTS, Y, n_classes=5)
    model.save(tmp_path)
    back = lexical.LexicalModel.load(tmp_path)
    assert back.vocabulary == model.vocabulary
    assert np.array_equal(back.log_proba(TEXTS), model.log_proba(TEXTS))
    from safetensors.numpy import save_file

    save_file(
        {"idf": model.idf[:-1], "coef": model.coef, "intercept": model.intercept},
        str(tmp_path / "lexical.safetensors"),
    )
    with pytest.raises(JobError, match="do not fit together"):
        lexical.LexicalModel.load(tmp_path)
    (tmp_path / "lexical.json").write_text("{not json")
    with pytest.raises(JobError, match="could not be read"):
        lexical.LexicalModel.load(tmp_path)


def test_blend_is_a_weighted_sum_of_log_probabilities() -> None:
    scores = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    lex = np.log(np.array([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    assert np.array_equal(lexical.blend(scores, lex, 0.0), scores)
    got = lexical.blend(scores, lex, 0.25)
    assert np.allclose(got, 0.75 * log_softmax(scores) + 0.25 * lex)
    # the second row: the model is indifferent, so the lexical model decides
    assert got.argmax(1).tolist() == [0, 2]


def test_job_lexical_keeps_validation_rows_out_of_the_validation_model() -> None:
    texts = [*TEXTS, "zebra quagga okapi"]
    y = np.array([*Y, 0])
    tr, va, every = np.arange(16), np.array([16]), np.arange(17)
    val, full = lexical.job_lexical(texts, y, tr, va, every, np.zeros((1, 5)), 0.5, 5, 0)
    assert full is not None and val.shape == (1, 5)
    # the validation row's word never reached the model that scored it: its lexical part is
    # the model's prior, the same as for an empty text
    part = lexical.fit_tfidf(texts[:16], y[:16], 5)
    assert np.allclose(val, 0.5 * log_softmax(np.zeros((1, 5))) + 0.5 * part.log_proba([""]))
    off, none = lexical.job_lexical(texts, y, tr, va, every, np.ones((1, 5)), 0.0, 5, 0)
    assert none is None and np.array_equal(off, np.ones((1, 5)))


def test_manifest_bounds_and_objective() -> None:
    assert TrainConfig(lexical_blend=0.5).lexical_blend == 0.5
    with pytest.raises(BundleError, match="lexical_blend"):
        TrainConfig(lexical_blend=1.0)
    with pytest.raises(BundleError, match="lexical_blend"):
        TrainConfig(method="lora", objective="label-tokens", lexical_blend=0.5)

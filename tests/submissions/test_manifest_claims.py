"""The vendor's claim in bedside.toml: optional, range-checked, kept in the manifest dict."""

from __future__ import annotations

from pathlib import Path

import pytest

from bedside.errors import BundleError
from bedside.submissions.manifest import Manifest, parse_manifest
from bedside.submissions.validate import validate_dir

BASE = 'name = "m"\nkind = "encoder"\n'


def test_claims_parsed_and_round_tripped() -> None:
    m = parse_manifest(
        BASE + 'claimed_macro_f1 = 0.92\nclaim_source = "PubMed 200k RCT, 2023"\n'
        '[claimed_per_class]\n"neoplasms" = 0.95\n"digestive system diseases" = 1\n'
    )
    assert m.claimed_macro_f1 == 0.92
    assert m.claimed_per_class == {"neoplasms": 0.95, "digestive system diseases": 1.0}
    d = m.to_dict()
    assert d["claimed_macro_f1"] == 0.92 and d["claim_source"] == "PubMed 200k RCT, 2023"
    assert Manifest.from_dict(d).to_dict() == d


def test_no_claim_is_fine() -> None:
    d = parse_manifest(BASE).to_dict()
    assert d["claimed_macro_f1"] is None and d["claimed_per_class"] == {}
    assert d["claim_source"] == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("claimed_macro_f1 = 1.2", "claimed_macro_f1 must be in the range 0..1; found 1.2"),
        ("claimed_macro_f1 = 92", "claimed_macro_f1 must be in the range 0..1; found 92"),
        ("claimed_macro_f1 = -0.1", "claimed_macro_f1 must be in the range 0..1; found -0.1"),
        ('claimed_macro_f1 = "high"', "claimed_macro_f1 must be a number; found 'high'"),
        ("claimed_macro_f1 = nan", "claimed_macro_f1 must be a number"),
        (
            '[claimed_per_class]\n"neoplasms" = 1.5',
            "claimed_per_class.'neoplasms' must be in the range 0..1",
        ),
        ("claimed_per_class = 0.9", "[claimed_per_class] must be a table"),
        ("claim_source = 3", "claim_source must be text"),
    ],
)
def test_bad_claims_refused_with_the_reason(extra: str, message: str) -> None:
    with pytest.raises(BundleError) as e:
        parse_manifest(BASE + extra + "\n")
    assert message in e.value.message


def test_per_class_claim_must_name_a_workspace_class(
    make_bundle,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    bundle = make_bundle("encoder")
    toml = bundle / "bedside.toml"
    toml.write_text(toml.read_text() + '\n[claimed_per_class]\n"oncology" = 0.9\n')
    with pytest.raises(BundleError) as e:
        validate_dir(bundle, classes=["neoplasms", "cardiovascular diseases"])
    assert "[claimed_per_class] names 'oncology'" in e.value.message
    assert "neoplasms" in e.value.message

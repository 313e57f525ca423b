"""A real pickle payload — one that would create a marker file if unpickled — is refused at
intake, and intake never unpickles it."""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bedside.errors import BundleError
from bedside.submissions.contributors import add_contributor
from bedside.submissions.intake import submit_bundle
from bedside.submissions.validate import validate_bundle
from bedside.workspace import Workspace


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))  # unpickling opens (creates) the marker file


def payload(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": _Payload(marker)})


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Sanity check: unpickling this payload does run code."""
    probe = tmp_path / "probe"
    f = pickle.loads(payload(probe))["state_dict"]
    f.close()
    assert probe.exists()


@pytest.mark.parametrize("filename", ["pytorch_model.bin", "model.pkl", "optimizer.pt"])
@pytest.mark.parametrize("packed", [False, True])
def test_pickle_payload_refused_and_never_loaded(
    make_bundle: Callable[..., Path], tmp_path: Path, filename: str, packed: bool
) -> None:
    marker = tmp_path / "PWNED"
    b = make_bundle()
    (b / filename).write_bytes(payload(marker))
    target: Path = b
    if packed:
        target = tmp_path / "bundle.tar.gz"
        with tarfile.open(target, "w:gz") as tf:
            tf.add(b, arcname=".")
    with pytest.raises(BundleError, match="pickle-based files can run code when loaded"):
        validate_bundle(target)
    assert not marker.exists()


def test_pickle_payload_never_reaches_the_store(
    make_bundle: Callable[..., Path], cws: Workspace, tmp_path: Path
) -> None:
    marker = tmp_path / "PWNED"
    add_contributor(cws, "acme")
    b = make_bundle()
    (b / "pytorch_model.bin").write_bytes(payload(marker))
    with pytest.raises(BundleError, match="pytorch_model.bin"):
        submit_bundle(cws, b, "acme")
    assert not marker.exists()
    assert list(cws.bundles_dir.iterdir()) == []

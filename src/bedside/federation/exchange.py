"""The state sites exchange, and the server's checks on every update before it is averaged.

A state is ``{tensor name: float32 array}``: the trainable tensors of the engine's model (LoRA
adapters and the classification head for ``exchange = "lora"``, every weight for ``"full"``).
An update is refused, with the site named, when its tensor names, shapes or dtypes differ from
the global state it was trained from, or when any value is NaN or infinite.

Example::

    validate_update("north", update, global_state)   # raises UpdateRejected on a bad one
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bedside.errors import DataError

if TYPE_CHECKING:
    from flwr.app import ArrayRecord

State = dict[str, np.ndarray]
MAX_ABS = 1e6  # a weight this large is a broken (or hostile) update, not training


class UpdateRejected(DataError):
    """A site's model update that the server will not average."""

    code = "update_rejected"

    def __init__(self, site: str, message: str) -> None:
        super().__init__(
            f"update from site {site!r} rejected: {message}",
            hint="The round goes on with the other sites; check that site's engine log.",
        )
        self.site = site


def validate_update(
    site: str, update: Mapping[str, np.ndarray], reference: Mapping[str, Any]
) -> None:
    """Raise :class:`UpdateRejected` unless ``update`` has exactly the reference's tensors, each
    with its shape and a float dtype, and only finite values of sane size."""
    extra, missing = sorted(set(update) - set(reference)), sorted(set(reference) - set(update))
    if extra or missing:
        raise UpdateRejected(
            site,
            f"expected the {len(reference)} tensors of the global state; "
            f"found {len(extra)} unknown {extra[:3]} and {len(missing)} missing {missing[:3]}.",
        )
    for name, ref in reference.items():
        arr = update[name]
        ref_shape = tuple(np.shape(ref))
        if tuple(arr.shape) != ref_shape:
            raise UpdateRejected(
                site, f"tensor {name} has shape {tuple(arr.shape)}, expected {ref_shape}."
            )
        if arr.dtype.kind != "f":
            raise UpdateRejected(site, f"tensor {name} has dtype {arr.dtype}, expected a float.")
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int(arr.size - finite.sum())
            raise UpdateRejected(site, f"tensor {name} has {bad} NaN or infinite value(s).")
        if arr.size and float(np.abs(arr).max()) > MAX_ABS:
            raise UpdateRejected(
                site,
                f"tensor {name} has a value of magnitude {float(np.abs(arr).max()):.3g} "
                f"(above {MAX_ABS:g}).",
            )


def to_record(state: Mapping[str, np.ndarray]) -> ArrayRecord:
    """``{name: array}`` -> Flower's ``ArrayRecord`` (names kept, order kept)."""
    from flwr.app import Array, ArrayRecord

    return ArrayRecord(
        array_dict={n: Array.from_numpy_ndarray(np.ascontiguousarray(a)) for n, a in state.items()}
    )


def from_record(record: ArrayRecord) -> State:
    return {name: arr.numpy() for name, arr in record.items()}


def nbytes(state: Mapping[str, np.ndarray]) -> int:
    return int(sum(np.asarray(a).nbytes for a in state.values()))


def save_state(state: Mapping[str, np.ndarray], path: Path) -> Path:
    """Write a state as safetensors (the engine reads it as the round's starting weights)."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: np.ascontiguousarray(a, dtype=np.float32) for n, a in state.items()}, str(path))
    return path


def load_state(path: Path) -> State:
    from safetensors.numpy import load_file

    return dict(load_file(str(path)))

"""Read safetensors headers without loading a single tensor.

A safetensors file is an 8-byte little-endian header length, a JSON header
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`` and the
raw data. We check the header ourselves (size cap, JSON, dtypes, shapes, offsets inside the file,
contiguous and non-overlapping, file length exact) so that a malformed file is refused at intake
with a clear message, long before any loader sees it.

Example::

    info = inspect_weights(bundle_dir, ["model.safetensors"])
    info.n_params, info.tensors["embeddings.word_embeddings.weight"].shape
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.errors import BundleError
from bedside.parsing import parse_json, read_bounded

DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
FLOAT_DTYPES = ("F8_E4M3", "F8_E5M2", "F16", "BF16", "F32", "F64")
INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    file: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class WeightsInfo:
    files: list[str]
    tensors: dict[str, TensorInfo] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        """Trainable-sized parameters: floating-point tensors (integer buffers such as
        ``position_ids`` are not parameters)."""
        return sum(t.numel for t in self.tensors.values() if t.dtype in FLOAT_DTYPES)

    @property
    def dtypes(self) -> list[str]:
        return sorted({t.dtype for t in self.tensors.values()})


def read_header(path: Path, max_header_bytes: int = 16 * 1024 * 1024) -> dict[str, TensorInfo]:
    """Parse and check one safetensors file's header; return its tensors."""
    name = path.name
    size = path.stat().st_size
    if size < 8:
        raise BundleError(f"{name}: {size} bytes is too short to be a safetensors file.")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > max_header_bytes:
            raise BundleError(
                f"{name}: the safetensors header claims {n} bytes, over the {max_header_bytes}-byte limit; "
                "the file is malformed or hostile.",
                hint="Re-save the model with save_pretrained(..., safe_serialization=True).",
            )
        if 8 + n > size:
            raise BundleError(
                f"{name}: the safetensors header length ({n}) runs past the end of the file ({size} bytes)."
            )
        raw = f.read(n)
    header = parse_json(
        raw,
        f"{name}: the safetensors header",
        BundleError,
        max_depth=4,  # {name: {"shape": [..]}}: three levels
        hint="The file is truncated or not safetensors; re-save it.",
    )
    if not isinstance(header, dict):
        raise BundleError(
            f"{name}: the safetensors header must be a JSON object; found {type(header).__name__}."
        )
    meta = header.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        raise BundleError(f"{name}: __metadata__ must map strings to strings.")
    data_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, TensorInfo] = {}
    for tname, spec in header.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise BundleError(
                f"{name}: tensor {tname!r} must have exactly dtype, shape and data_offsets; found {spec!r:.200}."
            )
        dtype, shape, offs = spec["dtype"], spec["shape"], spec["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise BundleError(
                f"{name}: tensor {tname!r} has unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}."
            )
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise BundleError(
                f"{name}: tensor {tname!r} has an invalid shape {shape!r}; expected a list of non-negative integers."
            )
        if (
            not isinstance(offs, list)
            or len(offs) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
            or not 0 <= offs[0] <= offs[1]
        ):
            raise BundleError(
                f"{name}: tensor {tname!r} has invalid data_offsets {offs!r}; expected [begin, end] with begin <= end."
            )
        if offs[1] > data_len:
            raise BundleError(
                f"{name}: tensor {tname!r} data_offsets {offs} run past the end of the data "
                f"({data_len} bytes after the header); the file is truncated or malformed."
            )
        want = math.prod(shape) * DTYPE_BYTES[dtype]
        if offs[1] - offs[0] != want:
            raise BundleError(
                f"{name}: tensor {tname!r} spans {offs[1] - offs[0]} bytes but shape {shape} of {dtype} needs {want}."
            )
        spans.append((offs[0], offs[1], tname))
        tensors[tname] = TensorInfo(dtype=dtype, shape=tuple(shape), file=name)
    pos = 0
    for begin, end, tname in sorted(spans):
        if begin < pos:
            raise BundleError(
                f"{name}: tensor {tname!r} overlaps the previous tensor (offset {begin} < {pos}); malformed file."
            )
        if begin > pos:
            raise BundleError(
                f"{name}: a {begin - pos}-byte gap before tensor {tname!r}; safetensors data must be contiguous."
            )
        pos = end
    if pos != data_len:
        raise BundleError(
            f"{name}: the tensors cover {pos} bytes but the file holds {data_len} data bytes; "
            "trailing bytes are not allowed."
        )
    return tensors


def _read_index(root: Path) -> dict[str, str]:
    data = read_bounded(
        root / INDEX_NAME, 16 * 1024 * 1024, INDEX_NAME, BundleError, follow_links=False
    )
    idx = parse_json(data, INDEX_NAME, BundleError)
    wm = idx.get("weight_map") if isinstance(idx, dict) else None
    if not isinstance(wm, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in wm.items()
    ):
        raise BundleError(f'{INDEX_NAME} must hold a "weight_map" of tensor name -> shard file.')
    return wm


def inspect_weights(
    root: Path, files: list[str], max_header_bytes: int = 16 * 1024 * 1024
) -> WeightsInfo:
    """Check the bundle's safetensors file(s) and return every tensor's dtype and shape."""
    shards = sorted(f for f in files if re.match(r"^model-\d{5}-of-\d{5}\.safetensors$", f))
    single = "model.safetensors" in files
    if single and shards:
        raise BundleError(
            "the bundle has both model.safetensors and sharded model-*-of-*.safetensors files; keep one set."
        )
    if not single and not shards:
        raise BundleError(
            "the bundle has no weights: expected model.safetensors (or model-0000N-of-0000M.safetensors "
            f"shards with {INDEX_NAME}).",
            hint="Save with model.save_pretrained(dir, safe_serialization=True).",
        )
    if single:
        return WeightsInfo(
            files=["model.safetensors"],
            tensors=read_header(root / "model.safetensors", max_header_bytes),
        )
    if INDEX_NAME not in files:
        raise BundleError(f"sharded weights need {INDEX_NAME}; it is missing.")
    totals = {int(m.group(1)) for s in shards if (m := re.search(r"-of-(\d{5})", s))}
    if len(totals) != 1 or len(shards) != totals.pop():
        raise BundleError(f"the shard files {', '.join(shards)} are not one complete set.")
    info = WeightsInfo(files=shards)
    for s in shards:
        for tname, t in read_header(root / s, max_header_bytes).items():
            if tname in info.tensors:
                raise BundleError(
                    f"tensor {tname!r} appears in two shards ({info.tensors[tname].file} and {s})."
                )
            info.tensors[tname] = t
    wm = _read_index(root)
    for tname, shard in wm.items():
        held = info.tensors.get(tname)
        if held is None or held.file != shard:
            raise BundleError(
                f"{INDEX_NAME} puts {tname!r} in {shard}, but that shard does not hold it."
            )
    missing = sorted(set(info.tensors) - set(wm))
    if missing:
        raise BundleError(
            f"{INDEX_NAME} does not list tensors present in the shards: {', '.join(missing[:5])}."
        )
    return info


def describe(info: WeightsInfo) -> dict[str, Any]:
    return {
        "files": info.files,
        "n_params": info.n_params,
        "dtypes": info.dtypes,
        "n_tensors": len(info.tensors),
    }

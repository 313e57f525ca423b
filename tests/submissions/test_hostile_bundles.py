"""Malformed and hostile bundles: each is refused, before anything loads weights, with a
message naming the problem."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bedside.errors import BundleError
from bedside.submissions.bundle import BundleLimits
from bedside.submissions.validate import validate_bundle
from bedside.testing.tinymodels import DEFAULT_CLASSES

from .helpers import edit_json, edit_manifest, read_st, write_st

Mutator = Callable[[Path], None]


# -- directory bundles ----------------------------------------------------------------------------
def _touch(name: str, content: bytes = b"x") -> Mutator:
    def m(b: Path) -> None:
        (b / name).parent.mkdir(parents=True, exist_ok=True)
        (b / name).write_bytes(content)

    return m


def _delete(*names: str) -> Mutator:
    def m(b: Path) -> None:
        for name in names:
            (b / name).unlink()

    return m


def _cfg(**changes: object) -> Mutator:
    return lambda b: edit_json(b / "config.json", lambda d: d.update(changes))


def _st(fn: Callable[[dict, bytes], tuple[dict | bytes, bytes, int | None]]) -> Mutator:
    def m(b: Path) -> None:
        header, data = read_st(b / "model.safetensors")
        h, d, length = fn(header, data)
        write_st(b / "model.safetensors", h, d, length)

    return m


def _first(h: dict) -> str:
    return next(k for k in h if k != "__metadata__")


def _overlap(h: dict, d: bytes) -> tuple[dict, bytes, None]:
    names = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
    a, b = h[names[0]], h[names[1]]
    # make the second tensor start inside the first one, keeping its own size
    size = b["data_offsets"][1] - b["data_offsets"][0]
    b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + size]
    return h, d, None


def _bigger_tokenizer(b: Path) -> None:
    from tokenizers import AddedToken, Tokenizer

    tok = Tokenizer.from_file(str(b / "tokenizer.json"))
    tok.add_tokens([AddedToken(f"extra_token_{i}") for i in range(40)])
    tok.save(str(b / "tokenizer.json"))


def _symlink(b: Path) -> None:
    os.symlink("/etc/passwd", b / "README.md")


def _fifo(b: Path) -> None:
    os.mkfifo(b / "LICENSE")


DIR_CASES: list[tuple[str, str, Mutator, str]] = [
    (
        "python file",
        "encoder",
        _touch("modeling_evil.py", b"import os"),
        "bundles may not contain code",
    ),
    (
        "pytorch_model.bin",
        "encoder",
        _touch("pytorch_model.bin"),
        "pickle-based files can run code",
    ),
    ("training_args.bin", "encoder", _touch("training_args.bin"), "training_args.bin is a pickle"),
    ("pickle file", "encoder", _touch("extra.pkl"), "pickle-based files can run code"),
    ("torch .pt", "encoder", _touch("weights.pt"), "pickle-based files can run code"),
    ("onnx weights", "encoder", _touch("model.onnx"), "this weight format is not accepted"),
    (
        "unknown junk file",
        "encoder",
        _touch("desktop.ini"),
        "desktop.ini: not a file a bundle may contain",
    ),
    (
        "unknown sub-directory",
        "encoder",
        _touch("extra/notes.md"),
        "extra/: bundles may not contain this directory",
    ),
    (
        "auto_map in config.json",
        "encoder",
        _cfg(auto_map={"AutoModel": "x.Y"}),
        "config.json: found 'auto_map'",
    ),
    (
        "auto_map nested in tokenizer_config.json",
        "encoder",
        lambda b: edit_json(
            b / "tokenizer_config.json",
            lambda d: d.update(extra={"inner": [{"auto_map": ["a", "b"]}]}),
        ),
        "tokenizer_config.json: found 'auto_map' (at extra.inner[0].auto_map)",
    ),
    (
        "trust_remote_code",
        "encoder",
        _cfg(trust_remote_code=True),
        "config.json: found 'trust_remote_code'",
    ),
    (
        "unsupported model_type",
        "encoder",
        _cfg(model_type="evil_arch"),
        "model_type 'evil_arch' is not supported",
    ),
    ("missing config.json", "encoder", _delete("config.json"), "the bundle has no config.json"),
    ("missing bedside.toml", "encoder", _delete("bedside.toml"), "the bundle has no bedside.toml"),
    ("missing weights", "encoder", _delete("model.safetensors"), "the bundle has no weights"),
    (
        "missing tokenizer",
        "encoder",
        _delete("tokenizer.json", "tokenizer_config.json"),
        "the bundle has no tokenizer",
    ),
    (
        "tokenizer does not load",
        "encoder",
        _touch("tokenizer.json", b'{"version": "1.0"}'),
        "tokenizer.json does not load",
    ),
    (
        "malformed header JSON",
        "encoder",
        _st(lambda h, d: (b'{"a": [1, 2', d, None)),
        "safetensors header is not valid JSON",
    ),
    (
        "oversized header length",
        "encoder",
        _st(lambda h, d: (json.dumps(h).encode(), d, 2**40)),
        "over the 16777216-byte limit",
    ),
    (
        "offsets beyond the file end",
        "encoder",
        _st(
            lambda h, d: (
                h | {_first(h): h[_first(h)] | {"data_offsets": [len(d) - 4, len(d) + 124]}},
                d,
                None,
            )
        ),
        "run past the end of the data",
    ),
    ("overlapping offsets", "encoder", _st(_overlap), "overlaps the previous tensor"),
    (
        "bad dtype",
        "encoder",
        _st(lambda h, d: (h | {_first(h): h[_first(h)] | {"dtype": "Q7"}}, d, None)),
        "unknown dtype 'Q7'",
    ),
    (
        "trailing bytes",
        "encoder",
        _st(lambda h, d: (h, d + b"\0" * 16, None)),
        "trailing bytes are not allowed",
    ),
    (
        "hidden size mismatch",
        "encoder",
        _cfg(hidden_size=48),
        "config.json says the hidden size is 48",
    ),
    ("vocab mismatch", "encoder", _cfg(vocab_size=9999), "config.json says vocab_size = 9999"),
    (
        "layer count mismatch",
        "encoder",
        _cfg(num_hidden_layers=4),
        "config.json says num_hidden_layers = 4, but the weights hold 2",
    ),
    (
        "tokenizer larger than embeddings",
        "encoder",
        _bigger_tokenizer,
        "but the embedding matrix has only",
    ),
    (
        "unknown manifest key",
        "encoder",
        lambda b: edit_manifest(b, train={"epochz": 3}),
        "unknown key(s) 'epochz' in [train]",
    ),
    (
        "learning rate out of range",
        "encoder",
        lambda b: edit_manifest(b, train={"learning_rate": 0.5}),
        "train.learning_rate must be in the range 1e-06..0.1; found 0.5",
    ),
    (
        "kind/method mismatch",
        "encoder",
        lambda b: edit_manifest(b, phase1={"method": "prompt"}),
        "phase1.method 'prompt' does not match kind 'encoder'",
    ),
    (
        "classifier without id2label",
        "encoder",
        lambda b: edit_manifest(
            b,
            kind="classifier",
            phase1={"method": "label-mapping"},
            labels={"LABEL_0": "neoplasms"},
        ),
        "config.json has no id2label",
    ),
    (
        "labels not matching id2label",
        "classifier",
        lambda b: edit_manifest(b, labels={"LABEL_0": "neoplasms", "LABEL_9": "neoplasms"}),
        "must map exactly the checkpoint's labels",
    ),
    (
        "causal-lm kind on an encoder",
        "encoder",
        lambda b: edit_manifest(b, kind="causal-lm", phase1={"method": "prompt"}),
        "model_type 'bert' is an encoder",
    ),
    (
        "invalid TOML",
        "encoder",
        _touch("bedside.toml", b"name = [unclosed"),
        "bedside.toml is not valid TOML",
    ),
    ("directory symlink", "encoder", _symlink, "README.md is a symbolic link"),
    ("directory FIFO", "encoder", _fifo, "LICENSE is a device, FIFO or socket"),
]


@pytest.mark.parametrize(
    ("kind", "mutate", "message"), [c[1:] for c in DIR_CASES], ids=[c[0] for c in DIR_CASES]
)
def test_directory_bundle_refused(
    make_bundle: Callable[..., Path], kind: str, mutate: Mutator, message: str
) -> None:
    b = make_bundle(kind)
    mutate(b)
    with pytest.raises(BundleError) as exc:
        validate_bundle(b)
    assert message in str(exc.value)


def test_classifier_labels_must_be_workspace_classes(make_bundle: Callable[..., Path]) -> None:
    b = make_bundle("classifier")
    edit_manifest(
        b,
        labels={f"LABEL_{i}": ("tumours" if i == 0 else c) for i, c in enumerate(DEFAULT_CLASSES)},
    )
    validate_bundle(b)  # fine without a workspace
    with pytest.raises(
        BundleError, match="maps onto 'tumours', which is not a class of this workspace"
    ):
        validate_bundle(b, classes=list(DEFAULT_CLASSES))


def test_descriptions_must_name_workspace_classes(make_bundle: Callable[..., Path]) -> None:
    b = make_bundle("encoder")
    edit_manifest(b, descriptions={"cancer": "tumours"})
    with pytest.raises(BundleError, match=r"\[descriptions\] names 'cancer'"):
        validate_bundle(b, classes=list(DEFAULT_CLASSES))


def test_header_length_past_end_of_file(make_bundle: Callable[..., Path]) -> None:
    b = make_bundle()
    header, data = read_st(b / "model.safetensors")
    write_st(b / "model.safetensors", header, data, length=10_000_000)
    with pytest.raises(BundleError, match="runs past the end of the file"):
        validate_bundle(b)


def test_sharded_weights_need_an_index(make_bundle: Callable[..., Path]) -> None:
    b = make_bundle()
    (b / "model.safetensors").rename(b / "model-00001-of-00001.safetensors")
    with pytest.raises(BundleError, match="sharded weights need model.safetensors.index.json"):
        validate_bundle(b)
    header, _ = read_st(b / "model-00001-of-00001.safetensors")
    wm = {k: "model-00001-of-00001.safetensors" for k in header if k != "__metadata__"}
    (b / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    assert validate_bundle(b).n_params > 0


# -- archives -------------------------------------------------------------------------------------
def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _ti(
    name: str, type_: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = ""
) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname, ti.mode = type_, size, linkname, 0o644
    return ti


def _good_tar_members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for p in sorted(bundle.iterdir()):
        data = p.read_bytes()
        out.append((_ti(p.name, size=len(data)), data))
    return out


TAR_CASES = [
    ("dotdot", lambda: [(_ti("../evil.txt", size=1), b"x")], "contains '..'"),
    ("absolute", lambda: [(_ti("/etc/cron.d/evil", size=1), b"x")], "has an absolute path"),
    (
        "symlink",
        lambda: [(_ti("README.md", tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
        "is a symbolic link",
    ),
    (
        "hardlink",
        lambda: [(_ti("LICENSE", tarfile.LNKTYPE, linkname="config.json"), None)],
        "is a hard link",
    ),
    (
        "char device",
        lambda: [(_ti("dev", tarfile.CHRTYPE), None)],
        "is a device, FIFO or other special file",
    ),
    (
        "fifo",
        lambda: [(_ti("pipe", tarfile.FIFOTYPE), None)],
        "is a device, FIFO or other special file",
    ),
]


@pytest.mark.parametrize(
    ("extra", "message"), [c[1:] for c in TAR_CASES], ids=[c[0] for c in TAR_CASES]
)
def test_tar_refused(
    make_bundle: Callable[..., Path], tmp_path: Path, extra: Callable[[], list], message: str
) -> None:
    arc = _tar(tmp_path / "b.tar.gz", _good_tar_members(make_bundle()) + extra())
    with pytest.raises(BundleError) as exc:
        validate_bundle(arc)
    assert message in str(exc.value)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_tar_bomb_stops_at_declared_size(tmp_path: Path) -> None:
    arc = _tar(
        tmp_path / "b.tar.gz", [(_ti("model.safetensors", size=3 * 2**20), b"\0" * (3 * 2**20))]
    )
    with pytest.raises(BundleError, match="declared unpacked size exceeds the limit of 1.0 MB"):
        validate_bundle(arc, limits=BundleLimits(max_total_bytes=2**20))


def _zip(path: Path, bundle: Path | None, extra: Callable[[zipfile.ZipFile], None]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if bundle is not None:
            for p in sorted(bundle.iterdir()):
                zf.write(p, p.name)
        extra(zf)
    return path


def _zip_symlink(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("README.md")
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    zf.writestr(info, "/etc/passwd")


def _zip_fifo(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("LICENSE")
    info.create_system = 3
    info.external_attr = 0o010644 << 16
    zf.writestr(info, "")


ZIP_CASES = [
    ("dotdot", lambda zf: zf.writestr("../../evil.txt", "x"), {}, "contains '..'"),
    (
        "absolute",
        lambda zf: zf.writestr(zipfile.ZipInfo("/tmp/evil.txt"), "x"),
        {},
        "has an absolute path",
    ),
    ("symlink", _zip_symlink, {}, "is a symbolic link"),
    ("fifo", _zip_fifo, {}, "is a device, FIFO or other special file"),
    (
        "declared size over limit",
        lambda zf: zf.writestr("model-00001-of-00002.safetensors", b"\0" * (2 * 2**20)),
        {"max_total_bytes": 2**20},
        "declared unpacked size exceeds the limit",
    ),
    (
        "too many members",
        lambda zf: [zf.writestr(f"junk{i}.txt", "") for i in range(250)],
        {},
        "more than 200 members",
    ),
    (
        "compression ratio",
        lambda zf: zf.writestr("vocab.txt", b"\0" * (8 * 2**20)),
        {},
        "refused as a likely zip bomb",
    ),
]


@pytest.mark.parametrize(
    ("extra", "limits", "message"), [c[1:] for c in ZIP_CASES], ids=[c[0] for c in ZIP_CASES]
)
def test_zip_refused(
    make_bundle: Callable[..., Path],
    tmp_path: Path,
    extra: Callable[[zipfile.ZipFile], None],
    limits: dict,
    message: str,
) -> None:
    arc = _zip(tmp_path / "b.zip", make_bundle(), extra)
    with pytest.raises(BundleError) as exc:
        validate_bundle(arc, limits=BundleLimits(**limits))
    assert message in str(exc.value)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_not_an_archive(tmp_path: Path) -> None:
    p = tmp_path / "bundle.rar"
    p.write_bytes(b"Rar!\x1a\x07\x00 nope")
    with pytest.raises(BundleError, match="expected a directory, a .zip or a .tar.gz"):
        validate_bundle(p)


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar-wrapped"])
def test_archives_accepted(make_bundle: Callable[..., Path], tmp_path: Path, fmt: str) -> None:
    b = make_bundle("classifier")
    direct = validate_bundle(b)
    if fmt == "zip":
        arc = _zip(tmp_path / "b.zip", b, lambda zf: None)
    else:
        arc = tmp_path / "b.tar.gz"
        with tarfile.open(arc, "w:gz") as tf:
            tf.add(b, arcname="my-bundle" if fmt == "tar-wrapped" else ".")
    report = validate_bundle(arc)
    assert report.content_hash == direct.content_hash
    assert report.n_params == direct.n_params

"""Decoder LLM bundles at intake: every allowlisted architecture, chat templates as data, and
hostile templates refused without their side effects ever happening."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bedside.errors import BundleError
from bedside.submissions.manifest import parse_manifest
from bedside.submissions.templates import PROBE, render_chat
from bedside.submissions.validate import validate_dir
from bedside.testing.tinydecoders import ARCHITECTURES, CHATML, make_tiny_decoder

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_decoder(tmp_path_factory.mktemp("dec") / "llama", "llama", hidden=16)


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_allowlisted_decoder_passes_intake(arch: str, tmp_path: Path) -> None:
    b = make_tiny_decoder(tmp_path / arch, arch, hidden=16, layers=2)
    report = validate_dir(b)
    assert report.model_type == arch and report.manifest.kind == "causal-lm"
    assert report.n_layers == 2 and report.warnings == []
    assert "generation_config.json" in {f.path for f in report.files}


def test_a_chat_template_file_is_accepted_as_data(tmp_path: Path) -> None:
    b = make_tiny_decoder(tmp_path / "q", "qwen2", hidden=16, chat_template=CHATML)
    assert (b / "chat_template.jinja").is_file()
    report = validate_dir(b)
    assert "chat_template.jinja" in {f.path for f in report.files}


PAYLOADS = {
    "globals": "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "subclasses": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
    "{% if c.__name__ == 'Popen' %}{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}",
    "namespace": "{{ namespace.__init__.__globals__['os'].system('touch MARKER') }}",
    "format": "{{ '{0.__class__.__init__.__globals__}'.format(cycler) }}{{ 'MARKER' }}",
}


@pytest.mark.parametrize("case", sorted(PAYLOADS))
def test_a_template_reaching_python_internals_is_refused_and_runs_nothing(
    case: str, llama: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "MARKER"
    b = _copy(llama, tmp_path / "b")
    (b / "chat_template.jinja").write_text(PAYLOADS[case].replace("MARKER", str(marker)))
    with pytest.raises(BundleError, match="chat template was refused") as e:
        validate_dir(b)
    assert "SecurityError" in e.value.message or "unsafe" in e.value.message
    assert not marker.exists()  # the side effect never happened


def test_a_template_that_loops_forever_is_stopped_by_the_time_limit(
    llama: Path, tmp_path: Path
) -> None:
    b = _copy(llama, tmp_path / "b")
    loops = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    (b / "chat_template.jinja").write_text(loops)
    with pytest.raises(BundleError, match="took over|CPU-time"):
        validate_dir(b)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "Range too big"),
        ("{% for i in range(99999) %}{{ 'x' * 1000 }}{% endfor %}", "output over"),
        ("{{ messages.append(messages) }}", "unsafe"),  # the inputs are immutable
        ("{% if %}", "TemplateSyntaxError"),
    ],
)
def test_huge_ranges_outputs_mutation_and_syntax_errors_are_refused(
    template: str, says: str
) -> None:
    with pytest.raises(BundleError, match=says):
        render_chat(template, PROBE)


def test_a_payload_in_tokenizer_config_is_refused_too(llama: Path, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    b = _copy(llama, tmp_path / "b")
    cfg = json.loads((b / "tokenizer_config.json").read_text())
    cfg["chat_template"] = PAYLOADS["globals"].replace("MARKER", str(marker))
    (b / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="refused"):
        validate_dir(b)
    assert not marker.exists()


def test_an_oversize_template_is_refused_before_rendering(llama: Path, tmp_path: Path) -> None:
    b = _copy(llama, tmp_path / "b")
    (b / "chat_template.jinja").write_text("x" * (65 * 1024))
    with pytest.raises(BundleError, match="chat_template.jinja"):
        validate_dir(b)


def test_a_real_chatml_template_renders_the_probe() -> None:
    text = render_chat(CHATML, PROBE, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou classify abstracts.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")


def test_decoder_phase1_keys_are_validated() -> None:
    base = 'name = "m"\nkind = "causal-lm"\n'
    d = parse_manifest(base).to_dict()["phase1"]
    assert d["calibration"] == "content-free" and d["chat_template"] is False
    with pytest.raises(BundleError, match="calibration"):
        parse_manifest(base + '[phase1]\ncalibration = "platt"\n')
    with pytest.raises(BundleError, match="true or false"):
        parse_manifest(base + '[phase1]\nchat_template = "yes"\n')
    with pytest.raises(BundleError, match='kind = "causal-lm" only'):
        parse_manifest('name = "m"\nkind = "encoder"\n[phase1]\ncalibration = "none"\n')
    enc = parse_manifest('name = "m"\nkind = "encoder"\n').to_dict()["phase1"]
    assert "calibration" not in enc  # encoders keep their phase-1 shape
    p = parse_manifest(base + '[phase1]\nprompt = "Classes:\\n{descriptions}\\n{text}"\n')
    assert p.phase1.prompt is not None

"""A vendor's chat template, rendered only in Jinja's sandbox, in a child process with limits.

A chat template (``chat_template.jinja``, or ``chat_template`` in ``tokenizer_config.json``) is
vendor-written Jinja, i.e. a small program. bedside never renders it with a plain Jinja
environment: :func:`render_chat` runs it in ``jinja2.sandbox.ImmutableSandboxedEnvironment``
(no ``__class__`` / ``__globals__`` style attribute access, no mutation of the inputs, ranges
capped at 100,000) inside a separate Python process with a CPU-time, memory and wall-clock
limit, and cuts the output at :data:`MAX_OUTPUT_CHARS`. A template that trips the sandbox, runs
too long or writes too much is refused at intake (:func:`check_template`) with the reason.

Example::

    text = render_chat(template, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bedside.errors import BundleError
from bedside.parsing import read_bounded

TEMPLATE_FILE = "chat_template.jinja"
MAX_TEMPLATE_BYTES = 64 * 1024  # real chat templates are 1-10 KB
MAX_OUTPUT_CHARS = 64 * 1024
RENDER_SECONDS = 5.0  # wall clock for the child, Python start-up included
RENDER_CPU_SECONDS = 3
RENDER_MEMORY_BYTES = 1024 * 1024 * 1024
PROBE = [
    {"role": "system", "content": "You classify abstracts."},
    {"role": "user", "content": "Abstract: a probe text."},
    {"role": "assistant", "content": "neoplasms"},
    {"role": "user", "content": "Abstract: another probe text."},
]


class TemplateRefused(Exception):
    """Raised inside the child; its message goes back to the parent."""


def find_template(root: Path, names: set[str], parsed: dict[str, Any]) -> tuple[str, str] | None:
    """``(where, text)`` of the bundle's chat template, or None. ``chat_template.jinja`` wins
    over ``tokenizer_config.json`` (as in transformers 5)."""
    if TEMPLATE_FILE in names:
        raw = read_bounded(
            root / TEMPLATE_FILE,
            MAX_TEMPLATE_BYTES,
            TEMPLATE_FILE,
            BundleError,
            follow_links=False,
            hint="A chat template is a page of Jinja; ship the one the model was trained with.",
        )
        try:
            return TEMPLATE_FILE, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BundleError(f"{TEMPLATE_FILE} is not UTF-8 text.") from e
    cfg = parsed.get("tokenizer_config.json")
    tpl = cfg.get("chat_template") if isinstance(cfg, dict) else None
    if isinstance(tpl, list):  # [{"name": "default", "template": "..."}, ...]
        named = {d.get("name"): d.get("template") for d in tpl if isinstance(d, dict)}
        tpl = named.get("default")
    if tpl is None:
        return None
    if not isinstance(tpl, str):
        raise BundleError(
            "tokenizer_config.json: chat_template must be a string (or a list of named templates "
            f"with a 'default'); found {type(tpl).__name__}."
        )
    if len(tpl.encode()) > MAX_TEMPLATE_BYTES:
        raise BundleError(
            f"tokenizer_config.json: chat_template is over {MAX_TEMPLATE_BYTES // 1024} KB; refused."
        )
    return "tokenizer_config.json chat_template", tpl


def _limits() -> None:  # the child's own first step, before it reads the template
    resource.setrlimit(resource.RLIMIT_CPU, (RENDER_CPU_SECONDS, RENDER_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY_BYTES, RENDER_MEMORY_BYTES))


def render_chat(
    template: str,
    messages: Sequence[dict[str, str]],
    *,
    add_generation_prompt: bool = True,
    special: dict[str, str] | None = None,
    where: str = TEMPLATE_FILE,
) -> str:
    """Render ``template`` for ``messages`` in the sandboxed child; BundleError if it is refused."""
    if len(template.encode()) > MAX_TEMPLATE_BYTES:
        raise BundleError(f"{where}: over {MAX_TEMPLATE_BYTES // 1024} KB; refused.")
    payload = {
        "template": template,
        "messages": list(messages),
        "add_generation_prompt": add_generation_prompt,
        "special": dict(special or {}),
    }
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bedside.submissions.templates"],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=RENDER_SECONDS,
            env=env,
            cwd="/",
        )
    except subprocess.TimeoutExpired as e:
        raise BundleError(
            f"{where}: rendering the chat template took over {RENDER_SECONDS:g} s; refused "
            "(a chat template formats a few messages in milliseconds).",
            hint="Ship the model's own chat template, without loops over large ranges.",
        ) from e
    try:
        res = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    except ValueError:
        res = None
    if not isinstance(res, dict):
        why = "ran out of its CPU-time or memory limit" if proc.returncode else "gave no answer"
        raise BundleError(
            f"{where}: rendering the chat template {why} (exit {proc.returncode}); refused.",
            hint="Ship the model's own chat template, without loops over large ranges.",
        )
    if not res.get("ok") and str(res.get("error", "")).startswith("ModuleNotFoundError"):
        raise BundleError(
            f"{where}: checking a chat template needs jinja2, which is not installed.",
            hint="python3 -m pip install jinja2  (or: pip install 'bedside[llm]')",
        )
    if not res.get("ok"):
        raise BundleError(
            f"{where}: the chat template was refused: {str(res.get('error'))[:300]}.",
            hint="bedside renders chat templates in Jinja's sandbox: no access to Python "
            "internals (__class__, __globals__ ...), no output over 64 KB.",
        )
    return str(res["text"])


def check_template(where: str, template: str) -> str:
    """Intake: the template renders a probe conversation in the sandbox within the limits.
    Returns the rendered probe."""
    return render_chat(template, PROBE, add_generation_prompt=True, where=where)


# -- the child ------------------------------------------------------------------------------------
def _render_in_sandbox(payload: dict[str, Any]) -> str:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    tpl = env.from_string(payload["template"])
    ctx = {
        "messages": payload["messages"],
        "add_generation_prompt": bool(payload["add_generation_prompt"]),
        **{str(k): str(v) for k, v in payload["special"].items()},
    }
    out: list[str] = []
    n = 0
    for piece in tpl.generate(**ctx):  # streamed, so a huge output stops at the cap
        n += len(piece)
        if n > MAX_OUTPUT_CHARS:
            raise TemplateRefused(f"output over {MAX_OUTPUT_CHARS} characters")
        out.append(piece)
    return "".join(out)


def main() -> int:
    _limits()
    try:
        payload = json.loads(sys.stdin.read())
        text = _render_in_sandbox(payload)
        print(json.dumps({"ok": True, "text": text}))
    except Exception as e:  # every refusal (SecurityError, TemplateError, overflow) goes back
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

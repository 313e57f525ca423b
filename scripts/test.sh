#!/usr/bin/env bash
# The project's checks: lint, format, types, then the test suite (slow tests included).
#   scripts/test.sh             everything
#   scripts/test.sh -m "not slow"   pass pytest arguments through
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff check"; python3 -m ruff check src tests bench scripts
echo "== ruff format --check"; python3 -m ruff format --check src tests bench scripts
echo "== mypy src"; python3 -m mypy src
echo "== services (PostgreSQL, Ray)"
trap 'scripts/services.sh stop' EXIT  # stopped after the run, also on failure
eval "$(scripts/services.sh start)"
echo "== pytest"; python3 -m pytest "$@"

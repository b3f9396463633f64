#!/usr/bin/env bash
# Run bench/compare.py in the project's venv (BentoML gets its own, made on first use).
set -euo pipefail
source "$(dirname "$0")/../scripts/_venv.sh"
exec python "$ROOT/bench/compare.py" "$@"

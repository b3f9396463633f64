#!/usr/bin/env bash
# Make BentoML 1.1.11's venv for the benchmark (outside the checkout, keyed by a hash of
# bench/requirements-bentoml.txt) and print its path on stdout. Idempotent; logs go to stderr.
#   BENTOML_VENV="$(bench/bentoml_venv.sh)"; "$BENTOML_VENV/bin/bentoml" --version
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3.11}"
REQS="$HERE/requirements-bentoml.txt"
KEY="$(sha256sum < "$REQS" | cut -c1-16)"
VENV_HOME="${BENTOLITE_VENV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/bentolite}"
VENV="$VENV_HOME/bench-bentoml-1.1.11-$KEY"

if [ ! -f "$VENV/.complete" ]; then
  mkdir -p "$VENV_HOME"
  exec 9>"$VENV_HOME/.bench-bentoml.lock"
  flock 9
  if [ ! -f "$VENV/.complete" ]; then
    echo "[bench] creating $VENV (about 30 s)" >&2
    start_s=$SECONDS
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    pip_quiet() {  # the local mirror's index prints a warning per package: show only failures
      local out
      if ! out="$("$VENV/bin/python" -m pip install -q "$@" 2>&1)"; then echo "$out" >&2; return 1; fi
    }
    pip_quiet --upgrade pip
    # --no-deps: the file is a complete frozen set, so pip resolves nothing (and never torch).
    pip_quiet --no-deps -r "$REQS"
    "$VENV/bin/python" -m pip check >&2
    "$VENV/bin/python" -c "import bentoml; assert bentoml.__version__ == '1.1.11', bentoml.__version__"
    touch "$VENV/.complete"
    echo "[bench] installed in $((SECONDS - start_s)) s" >&2
  fi
fi
echo "$VENV"

#!/usr/bin/env bash
# Make the venv of a peer that tests and benchmarks compare with, and print its path.
#   scripts/peer_venv.sh bentoml-1.1.11   ->  ~/.cache/bentolite/peer-bentoml-1.1.11-<hash>
# Each peer is a frozen requirements file, requirements/peers/NAME.txt, installed with
# --no-deps (pip resolves nothing, so never torch) into a venv outside the checkout, keyed by
# a hash of that file, so fresh clones (CI) reuse it. Idempotent and safe to run
# concurrently; logs go to stderr.
set -euo pipefail

NAME="${1:?usage: scripts/peer_venv.sh NAME (a file in requirements/peers/)}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="$ROOT/requirements/peers/$NAME.txt"
[ -f "$REQS" ] || { echo "no peer $NAME: $REQS is missing" >&2; exit 2; }
PYTHON="${PEER_PYTHON:-python3.11}"
KEY="$(sha256sum < "$REQS" | cut -c1-16)"
VENV_HOME="${BENTOLITE_VENV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/bentolite}"
VENV="$VENV_HOME/peer-$NAME-$KEY"

if [ ! -f "$VENV/.complete" ]; then
  mkdir -p "$VENV_HOME"
  exec 9>"$VENV_HOME/.peer-$NAME.lock"
  flock 9
  if [ ! -f "$VENV/.complete" ]; then
    echo "[peer] creating $VENV (a minute or more)" >&2
    start_s=$SECONDS
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    pip_quiet() {  # the local mirror's index prints a warning per package: show only failures
      local out
      if ! out="$("$VENV/bin/python" -m pip install -q "$@" 2>&1)"; then echo "$out" >&2; return 1; fi
    }
    pip_quiet --upgrade pip
    pip_quiet --no-deps -r "$REQS"
    "$VENV/bin/python" -m pip check >&2
    touch "$VENV/.complete"
    echo "[peer] $NAME installed in $((SECONDS - start_s)) s" >&2
  fi
fi
echo "$VENV"

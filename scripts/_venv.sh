# Sourced by scripts/test and scripts/demo: make .venv ready and activate it.
#
# The venv lives outside the checkout, keyed by a hash of the pinned requirements, so a
# fresh clone (CI) reuses it; `.venv` is a link to it. The torch pair is installed first
# and pinned, so pip never picks a torch of its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
LOCK="$ROOT/requirements/lock.txt"
KEY="$(cat "$LOCK" | sha256sum | cut -c1-16)"
VENV_HOME="${BENTOLITE_VENV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/bentolite}"
VENV="$VENV_HOME/venv-$KEY"

if [ ! -f "$VENV/.complete" ]; then
  # one creator at a time: a second test run started meanwhile waits, then finds it made
  mkdir -p "$VENV_HOME"
  exec 8>"$VENV_HOME/.venv-$KEY.lock"
  flock 8
  if [ ! -f "$VENV/.complete" ]; then
    echo "[venv] creating $VENV (first run installs torch and friends: a few minutes)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    pip_quiet() {  # the local mirror's index prints a warning per package: show only failures
      local out
      if ! out="$("$VENV/bin/python" -m pip install -q "$@" 2>&1)"; then echo "$out" >&2; return 1; fi
    }
    pip_quiet --upgrade pip wheel setuptools
    pip_quiet "${TORCH_PINS[@]}"
    pip_quiet -r "$LOCK" "${TORCH_PINS[@]}"
    touch "$VENV/.complete"
  fi
  exec 8>&-
fi

if [ "$(readlink "$ROOT/.venv" 2>/dev/null)" != "$VENV" ]; then
  rm -rf "$ROOT/.venv"
  ln -s "$VENV" "$ROOT/.venv"
fi

# bentolite itself: editable, so the `bentolite` console script exists; PYTHONPATH makes
# every process (tests, workers) import this checkout even when several share the venv.
if ! log="$(flock "$VENV/.install-lock" "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" 2>&1)"; then
  echo "$log" >&2
  exit 1
fi
# byte-compile the checkout as an install would: every worker process a test or benchmark
# starts then skips compiling (even with PYTHONDONTWRITEBYTECODE set)
"$VENV/bin/python" -m compileall -q "$ROOT/bentolite" >/dev/null
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export VIRTUAL_ENV="$VENV"

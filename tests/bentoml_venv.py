"""Where the benchmark's BentoML 1.1.11 venv is, for the interoperability tests."""
from __future__ import annotations

import glob
import os

__all__ = ["bentoml_python", "SKIP_REASON"]

SKIP_REASON = "BentoML 1.1.11 venv not found (make it with bench/bentoml_venv.sh or set BENTOML_PYTHON)"


def bentoml_python() -> str | None:
    """The python of a complete BentoML 1.1.11 venv (``$BENTOML_PYTHON`` first), or None."""
    if os.environ.get("BENTOML_PYTHON"):
        return os.environ["BENTOML_PYTHON"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    venv_home = os.environ.get("BENTOLITE_VENV_HOME") or os.path.join(cache, "bentolite")
    for venv in sorted(glob.glob(os.path.join(venv_home, "bench-bentoml-1.1.11-*"))):
        if os.path.isfile(os.path.join(venv, ".complete")):
            return os.path.join(venv, "bin", "python")
    return None

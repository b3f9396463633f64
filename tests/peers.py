"""The venvs of the peers that tests compare with (BentoML 1.1.11, BentoML 1.4.39).

Each is made on first use by ``scripts/peer_venv.sh NAME`` (cached outside the checkout,
keyed by its frozen requirements file), so a fresh machine runs these tests instead of
skipping them; ``./scripts/test`` makes them before pytest starts.
"""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

__all__ = ["peer_python", "bentoml_python", "bentoml14_python"]

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "peer_venv.sh"


@functools.cache
def peer_python(name: str) -> str:
    """The python of peer ``name`` (a file in requirements/peers/), made if missing."""
    done = subprocess.run(["bash", str(_SCRIPT), name], capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"could not make the {name} venv:\n{done.stderr[-4000:]}")
    return str(Path(done.stdout.strip()) / "bin" / "python")


def bentoml_python() -> str:
    """BentoML 1.1.11's python (``$BENTOML_PYTHON`` first)."""
    return os.environ.get("BENTOML_PYTHON") or peer_python("bentoml-1.1.11")


def bentoml14_python() -> str:
    """BentoML 1.4.39's python (``$BENTOML14_PYTHON`` first)."""
    return os.environ.get("BENTOML14_PYTHON") or peer_python("bentoml-1.4.39")

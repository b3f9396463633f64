"""A small v1 project to build bentos from: a picklable model, a service, a bentofile."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

__all__ = ["BENTOLITE", "cli", "env_for", "ok", "make_project", "save_model"]

BENTOLITE = shutil.which("bentolite")

MODEL = """\
class Doubler:
    def __call__(self, xs):
        return [2 * x for x in xs]
"""

# v1 code, as BentoML 1.1 runs it; the one changed line is the import (it runs on both)
SERVICE = """\
try:
    import bentolite as bentoml
except ImportError:
    import bentoml
JSON = bentoml.io.JSON
{extra_import}
runner = bentoml.picklable_model.get("doubler:latest").to_runner()
svc = bentoml.Service("doubler_svc", runners=[runner])


@svc.api(input=JSON(), output=JSON())
async def double(xs):
    return await runner.async_run(xs)
"""

SAVE = """\
try:
    import bentolite as bentoml
except ImportError:
    import bentoml
import mymodel

bentoml.picklable_model.save_model(
    "doubler", mymodel.Doubler(), signatures={"__call__": {"batchable": True}})
"""

BENTOFILE = """\
service: "service:svc"
labels:
  owner: team-a
include:
  - "*.py"
  - "data/"
exclude:
  - "save_model.py"
  - "data/secret.key"
python:
  packages:
    - six
"""


def make_project(root: Path, *, bentofile: str = BENTOFILE, extra_import: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mymodel.py").write_text(MODEL)
    (root / "service.py").write_text(SERVICE.format(extra_import=extra_import))
    (root / "save_model.py").write_text(SAVE)
    (root / "bentofile.yaml").write_text(textwrap.dedent(bentofile))
    (root / "notes.txt").write_text("not included: not *.py and not under data/\n")
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "labels.json").write_text('["a", "b"]\n')
    (data / "secret.key").write_text("excluded by the bentofile\n")
    (data / "scratch.tmp").write_text("excluded by data/.bentoignore\n")
    (data / ".bentoignore").write_text("*.tmp\n")
    return root


def env_for(home: Path, peer: bool = False) -> dict[str, str]:
    """The environment of a command on ``home``; a peer (BentoML) never sees this checkout."""
    env = {**os.environ, "BENTOLITE_HOME": str(home), "BENTOML_HOME": str(home),
           "BENTOML_DO_NOT_TRACK": "true", "COLUMNS": "200"}
    for name in ("BENTOLITE_DEBUG", "BENTOLITE_MODEL_STORE", *(["PYTHONPATH"] if peer else [])):
        env.pop(name, None)
    return env


def save_model(project: Path, home: Path, python: str = sys.executable) -> None:
    done = subprocess.run([python, "save_model.py"], cwd=project, timeout=120, text=True,
                          env=env_for(home, peer=python != sys.executable), capture_output=True)
    assert done.returncode == 0, done.stderr


def cli(home: Path, *args: str, cwd: Path | None = None, timeout_s: float = 120
        ) -> subprocess.CompletedProcess[str]:
    assert BENTOLITE, "the bentolite console script is not on PATH (run through scripts/test)"
    return subprocess.run([BENTOLITE, *args], capture_output=True, text=True, cwd=cwd,
                          env=env_for(home), timeout=timeout_s)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout

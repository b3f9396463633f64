"""What a container build does, done for real without a container: from the build context
`bentolite containerize --output` writes, a fresh venv runs the image's install script
(the bento's requirements, then the bentolite wheel in the context) and the image's
entrypoint serves the bento on 127.0.0.1.

The venv is a plain ``python -m venv`` (no ``--system-site-packages``, no path to this
checkout), so everything the bento needs must come from its own ``env/python``; pip reads
the local PyPI mirror, constrained to requirements/lock.txt so the versions are the tested
ones (about a minute, mostly wheels being unpacked).
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bentolite.bentos.docker import available_backends
from tests.bentos.project import cli, make_project, ok, save_model
from tests.e2e.example_server import ROOT, ExampleServer

@pytest.fixture
def context(tmp_path: Path) -> Path:
    """The build context of the doubler bento (its requirements: six)."""
    home = tmp_path / "home"
    project = make_project(tmp_path / "project", extra_import="import six  # from env/python")
    save_model(project, home)
    ok(cli(home, "build", str(project), "--version", "v1"))
    out = ok(cli(home, "containerize", "doubler_svc:v1", "-t", "doubler:dev", "--backend",
                 "docker", "--output", str(tmp_path / "ctx")))
    assert f"docker build -t doubler:dev -f {tmp_path / 'ctx'}/env/docker/Dockerfile" in out
    return tmp_path / "ctx"


def test_context_is_complete(context: Path) -> None:
    dockerfile = (context / "env/docker/Dockerfile").read_text()
    assert dockerfile.splitlines()[2] == "FROM python:{}.{}-slim".format(*sys.version_info[:2])
    for line in ["RUN bash -euxo pipefail ./env/python/install.sh", "EXPOSE 3000",
                 "USER bentoml", "ENV BENTO_PATH=$BENTO_PATH BENTOLITE_HOME=/home/bentoml/",
                 'ENTRYPOINT ["/home/bentoml/bento/env/docker/entrypoint.sh"]']:
        assert line in dockerfile.splitlines(), line
    assert dockerfile.index("install.sh") < dockerfile.index("COPY --chown=bentoml:bentoml . ./")
    [wheel] = (context / "env/python/wheels").glob("bentolite-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "bentolite/bentos/docker.py" in names and "Requires-Dist: aiohttp>=3.9" in metadata
    assert (context / "bento.yaml").is_file() and (context / "src/service.py").is_file()
    assert list((context / "models/doubler").glob("*/saved_model.pkl"))
    assert os.access(context / "env/docker/entrypoint.sh", os.X_OK)


def test_fresh_venv_installs_and_serves_the_bento(context: Path, tmp_path: Path) -> None:
    venv = tmp_path / "fresh"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
                   check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["PIP_CONSTRAINT"] = " ".join(
        p for p in ("/etc/xdg/pip/constraints.txt", str(ROOT / "requirements/lock.txt"))
        if Path(p).is_file())
    done = subprocess.run(["bash", str(context / "env/python/install.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    where = subprocess.run([str(venv / "bin/python"), "-c",
                            "import bentolite, six; print(bentolite.__file__)"],
                           env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel's, not this checkout

    home = tmp_path / "container-home"  # empty: the models come from the bento
    with ExampleServer("portable", home, tmp_path, {"BENTO_PATH": str(context), "PATH": env["PATH"]},
                       target="", cwd=context,
                       bentolite=[str(context / "env/docker/entrypoint.sh")]) as server:
        server.wait_ready()
        assert server.post_json("/double", b"[1, 2]", "application/json") == [2, 4]
        assert server.stop() == 0, server.log()[-3000:]


def test_image_builds(context: Path) -> None:
    backend = next(iter(available_backends()), None)
    if backend is None:
        pytest.skip("no working container backend (docker, podman or buildah with its daemon) "
                    "on this machine: the image "
                    "build itself is not run; the build context is generated and checked above, "
                    "and its install and serve path runs in a fresh venv")
    verb = "bud" if backend == "buildah" else "build"
    done = subprocess.run([backend, verb, "-t", "bentolite-test-doubler:v1", "-f",
                           str(context / "env/docker/Dockerfile"), str(context)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

"""Bentos move both ways with the real BentoML 1.1.11 (its own venv, tests/peers.py)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.bentos.project import cli, env_for, make_project, ok, save_model
from tests.e2e.example_server import ExampleServer
from tests.peers import bentoml_python


def bentoml(home: Path, *args: str, cwd: Path | None = None) -> str:
    command = str(Path(bentoml_python()).with_name("bentoml"))
    done = subprocess.run([command, *args], cwd=cwd, env=env_for(home, peer=True),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_bentoml_bento_imports_and_serves(tmp_path: Path) -> None:
    bentoml_home, home = tmp_path / "bentoml-home", tmp_path / "home"
    project = make_project(tmp_path / "project")
    save_model(project, bentoml_home, python=bentoml_python())
    assert "__tag__:doubler_svc:frombentoml" in bentoml(
        bentoml_home, "build", str(project), "--version", "frombentoml", "-o", "tag")
    archive = tmp_path / "doubler.bento"
    bentoml(bentoml_home, "export", "doubler_svc:frombentoml", str(archive))

    assert ok(cli(home, "import", str(archive))).strip() == "Imported doubler_svc:frombentoml"
    info = json.loads(ok(cli(home, "get", "doubler_svc", "-o", "json")))
    assert info["bentoml_version"] == "1.1.11" and info["models"][0]["tag"].startswith("doubler:")
    assert not (home / "models").exists()  # its models stay in the bento
    with ExampleServer("bentoml-bento", home, tmp_path, target="doubler_svc:frombentoml",
                       cwd=tmp_path) as server:
        server.wait_ready()
        assert server.post_json("/double", b"[5, 6]", "application/json") == [10, 12]
        assert server.stop() == 0, server.log()[-3000:]


def test_bentoml_reads_a_bentolite_bento(tmp_path: Path) -> None:
    home = tmp_path / "home"
    project = make_project(tmp_path / "project")
    save_model(project, home)
    ok(cli(home, "build", str(project), "--version", "fromlite"))
    # BentoML reads bentolite's store as its own home ...
    info = json.loads(bentoml(home, "get", "doubler_svc:fromlite", "-o", "json"))
    ours = yaml.safe_load((home / "bentos/doubler_svc/fromlite/bento.yaml").read_text())
    assert {k: info[k] for k in ours} == ours
    assert "doubler_svc:fromlite" in bentoml(home, "list")
    # ... and imports its .bento, models and all
    ok(cli(home, "export", "doubler_svc:fromlite", str(tmp_path / "lite.bento")))
    other = tmp_path / "bentoml-home"
    bentoml(other, "import", str(tmp_path / "lite.bento"))
    assert json.loads(bentoml(other, "get", "doubler_svc:fromlite", "-o", "json"))["apis"] == [
        {"name": "double", "input_type": "JSON", "output_type": "JSON"}]
    assert bentoml(other, "models", "list", "-o", "json").count('"doubler:') == 1

"""``bentolite serve`` of a bento tag, a bento directory and ``.`` (a bentofile directory):
the real production server on 127.0.0.1, one request each."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bentos.project import cli, make_project, ok, save_model
from tests.e2e.example_server import ExampleServer


def _serve_once(home: Path, tmp_path: Path, target: str, cwd: Path) -> str:
    with ExampleServer("bento", home, tmp_path, target=target, cwd=cwd) as server:
        server.wait_ready()
        answer = server.post_json("/double", b"[1, 2, 3]", "application/json")
        assert server.stop() == 0, server.log()[-3000:]
    assert answer == [2, 4, 6]
    return server.log()


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    project = make_project(tmp_path / "project")
    save_model(project, home)
    return home, project


def test_serve_a_tag_with_the_bentos_own_models(project: tuple[Path, Path], tmp_path: Path
                                                ) -> None:
    home, proj = project
    ok(cli(home, "build", str(proj), "--version", "v1"))
    shutil.rmtree(home / "models")  # the bento carries its models: the store's are not needed
    shutil.rmtree(proj)
    log = _serve_once(home, tmp_path, "doubler_svc:v1", tmp_path)
    assert log.count("serving bento doubler_svc:v1") == 1  # not again from a forked child


def test_serve_a_bento_directory(project: tuple[Path, Path], tmp_path: Path) -> None:
    home, proj = project
    ok(cli(home, "build", str(proj), "--version", "v1"))
    moved = tmp_path / "elsewhere"
    shutil.copytree(home / "bentos" / "doubler_svc" / "v1", moved)
    shutil.rmtree(home / "bentos")
    shutil.rmtree(home / "models")
    _serve_once(home, tmp_path, str(moved), tmp_path)


def test_serve_dot_in_a_bentofile_directory(project: tuple[Path, Path], tmp_path: Path) -> None:
    home, proj = project
    _serve_once(home, tmp_path, ".", proj)  # the service named by bentofile.yaml


def test_serve_of_a_plain_directory_says_what_it_takes(tmp_path: Path) -> None:
    result = cli(tmp_path / "home", "serve", ".", cwd=tmp_path)
    assert result.returncode == 1 and "neither a bentofile.yaml nor a service.py" in result.stderr
    result = cli(tmp_path / "home", "serve", "nosuch_bento:v1", cwd=tmp_path)
    assert result.returncode == 1 and "nor a bento in the store" in result.stderr


def test_split_deployment_of_a_bento_tag(project: tuple[Path, Path], tmp_path: Path) -> None:
    """``start-runner-server`` and ``start-http-server`` take a bento tag as ``serve`` does:
    its ``src/`` and its own ``models/`` (the store's are gone)."""
    import json

    from tests.e2e.prod_helpers import Command, free_port
    from tests.e2e.test_split import _wait_http_ok

    home, proj = project
    ok(cli(home, "build", str(proj), "--version", "v1"))
    shutil.rmtree(home / "models")
    shutil.rmtree(proj)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"runners": {"auth_token": "split-bento-secret"}}))
    runner_port = free_port()
    runner = Command(["start-runner-server", "doubler_svc:v1", "--runner-name", "doubler",
                      "--port", str(runner_port), "--config", str(config)], tmp_path,
                     port=runner_port, name="runner")
    api = None
    try:
        _wait_http_ok(runner, f"http://127.0.0.1:{runner_port}/readyz")
        api_port = free_port()
        api = Command(["start-http-server", "doubler_svc:v1", "--remote-runner",
                       f"doubler=tcp://127.0.0.1:{runner_port}", "--host", "127.0.0.1",
                       "--port", str(api_port), "--api-workers", "1", "--config",
                       str(config)], tmp_path, port=api_port, name="api")
        api.wait_ready()
        assert api.post_json("/double", [1, 2, 3]).json() == [2, 4, 6]
    finally:
        for command in (api, runner):
            if command is not None:
                command.close()

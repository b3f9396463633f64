"""``bentolite build`` and the bento store commands, through the console script."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.bentos.project import cli, make_project, ok, save_model

BENTO_YAML_KEYS = ["service", "name", "version", "bentoml_version", "creation_time", "labels",
                   "models", "runners", "apis", "docker", "python", "conda"]


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, str]:
    """(home, project, tag) of a bento built from the doubler project."""
    home, project = tmp_path / "home", make_project(tmp_path / "project")
    save_model(project, home)
    out = ok(cli(home, "build", str(project), "--version", "v1", "-o", "tag"))
    assert out.strip() == "__tag__:doubler_svc:v1"
    return home, project, "doubler_svc:v1"


def test_layout_and_bento_yaml(built: tuple[Path, Path, str]) -> None:
    home, _, tag = built
    bento = home / "bentos" / "doubler_svc" / "v1"
    assert (home / "bentos" / "doubler_svc" / "latest").read_text() == "v1"
    for rel in ["bento.yaml", "README.md", "apis/openapi.yaml", "env/python/requirements.txt",
                "env/python/version.txt", "env/python/install.sh", "env/docker/Dockerfile",
                "env/docker/entrypoint.sh"]:
        assert (bento / rel).is_file(), rel
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert list(info) == BENTO_YAML_KEYS
    assert info["service"] == "service:svc" and info["name"] == "doubler_svc"
    assert info["version"] == "v1" and info["labels"] == {"owner": "team-a"}
    [model] = info["models"]
    assert model["tag"].startswith("doubler:") and model["module"] == "bentoml.picklable_model"
    assert info["runners"] == [{"name": "doubler", "runnable_type": "PicklableRunnable",
                                "embedded": False, "models": [model["tag"]],
                                "resource_config": None}]
    assert info["apis"] == [{"name": "double", "input_type": "JSON", "output_type": "JSON"}]
    assert info["python"]["packages"] == ["six"] and info["conda"]["pip"] is None
    assert info["docker"]["distro"] == "debian" and info["docker"]["python_version"]
    assert (bento / "env/python/requirements.txt").read_text() == "six\n"
    assert "/double" in yaml.safe_load((bento / "apis/openapi.yaml").read_text())["paths"]
    assert json.loads(ok(cli(home, "get", tag, "-o", "json")))["version"] == "v1"
    assert ok(cli(home, "get", "doubler_svc", "-o", "path")).strip() == str(bento)


def test_include_exclude_and_bentoignore(built: tuple[Path, Path, str]) -> None:
    home, _, _ = built
    src = home / "bentos" / "doubler_svc" / "v1" / "src"
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    # *.py and data/ are in; save_model.py, data/secret.key (exclude), data/*.tmp
    # (.bentoignore) and notes.txt (not included) are not
    assert files == ["data/.bentoignore", "data/labels.json", "mymodel.py", "service.py"]


def test_models_are_copied_into_the_bento(built: tuple[Path, Path, str]) -> None:
    home, _, _ = built
    [stored] = (home / "models" / "doubler").glob("*/model.yaml")
    version = stored.parent.name
    copied = home / "bentos" / "doubler_svc" / "v1" / "models" / "doubler"
    assert (copied / "latest").read_text() == version
    assert (copied / version / "model.yaml").read_bytes() == stored.read_bytes()
    assert ((copied / version / "saved_model.pkl").read_bytes()
            == (stored.parent / "saved_model.pkl").read_bytes())


def test_list_delete_and_latest(built: tuple[Path, Path, str]) -> None:
    home, project, _ = built
    ok(cli(home, "build", str(project), "--version", "v2"))
    rows = json.loads(ok(cli(home, "list", "-o", "json")))
    assert [r["tag"] for r in rows] == ["doubler_svc:v2", "doubler_svc:v1"]
    assert set(rows[0]) == {"tag", "size", "model_size", "creation_time"}
    assert "Model Size" in ok(cli(home, "list"))
    assert (home / "bentos" / "doubler_svc" / "latest").read_text() == "v2"
    ok(cli(home, "delete", "doubler_svc:v2", "-y"))
    assert (home / "bentos" / "doubler_svc" / "latest").read_text() == "v1"
    ok(cli(home, "delete", "doubler_svc", "-y"))
    assert not (home / "bentos" / "doubler_svc").exists()
    again = cli(home, "build", str(project), "--version", "v1")
    assert "already exists" not in again.stderr and again.returncode == 0


def test_same_version_twice_is_refused(built: tuple[Path, Path, str]) -> None:
    home, project, _ = built
    result = cli(home, "build", str(project), "--version", "v1")
    assert result.returncode == 1 and "Bento 'doubler_svc:v1' already exists" in result.stderr


def test_broken_service_fails_naming_the_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    project = make_project(tmp_path / "p", extra_import="raise RuntimeError('no GPU here')")
    result = cli(home, "build", str(project))
    assert result.returncode == 1
    assert "RuntimeError: no GPU here" in result.stderr and "Traceback" not in result.stderr
    assert not (home / "bentos").exists() or not any((home / "bentos").iterdir())


def test_missing_model_is_named(tmp_path: Path) -> None:
    home, project = tmp_path / "home", make_project(tmp_path / "p")
    result = cli(home, "build", str(project))  # no save_model: the service cannot load
    assert result.returncode == 1 and "Model 'doubler' is not found" in result.stderr
    save_model(project, home)
    (project / "bentofile.yaml").write_text(
        (project / "bentofile.yaml").read_text() + "models:\n  - nosuch:v1\n")
    result = cli(home, "build", str(project))
    assert result.returncode == 1 and "Model 'nosuch:v1' is not found" in result.stderr


@pytest.mark.parametrize("extra, message", [
    ("docker:\n  bogus: 1\n", "docker.bogus: unknown key"),
    ("pyhton:\n  packages: [x]\n", "pyhton: unknown key"),
    ("conda:\n  dependencies: [numpy]\n", "conda environments are not supported"),
    ("docker:\n  python_version: '2.7'\n", "docker.python_version"),
    ("docker:\n  env: [NOT-A-VAR]\n", "docker.env[0]: expected KEY=VALUE"),
])
def test_bad_bentofile_is_refused_with_its_path(tmp_path: Path, extra: str, message: str) -> None:
    home, project = tmp_path / "home", make_project(tmp_path / "p")
    (project / "bentofile.yaml").write_text("service: 'service:svc'\n" + extra)
    result = cli(home, "build", str(project))
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_export_import_round_trip(built: tuple[Path, Path, str], tmp_path: Path) -> None:
    home, _, tag = built
    out = ok(cli(home, "export", tag, f"{tmp_path / 'out'}/"))
    archive = tmp_path / "out" / "doubler_svc-v1.bento"
    assert str(archive) in out
    with tarfile.open(archive, "r:xz") as tf:  # BentoML's .bento: an xz tar of the dir
        names = tf.getnames()
    assert "bento.yaml" in names and any(n.startswith("models/doubler/") for n in names)
    other = tmp_path / "other-home"
    assert ok(cli(other, "import", str(archive))).strip() == f"Imported {tag}"
    original = home / "bentos" / "doubler_svc" / "v1"
    copy = other / "bentos" / "doubler_svc" / "v1"
    files = sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file())
    assert all((original / f).read_bytes() == (copy / f).read_bytes() for f in files)
    assert (copy / "env/docker/entrypoint.sh").stat().st_mode & 0o111
    result = cli(other, "import", str(archive))
    assert result.returncode == 1 and "already exists" in result.stderr


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "src/../../evil.txt"])
def test_traversal_archives_are_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.bento"
    with tarfile.open(archive, "w:xz") as tf:
        for name, data in (("bento.yaml", b"name: x\n"), (member, b"gotcha")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    home = tmp_path / "home"
    result = cli(home, "import", str(archive))
    assert result.returncode == 1 and "refusing archive member" in result.stderr
    assert not (tmp_path / "evil.txt").exists()
    assert not (home / "bentos").exists() or not any((home / "bentos").iterdir())


def test_import_names_a_missing_model(built: tuple[Path, Path, str], tmp_path: Path) -> None:
    home, _, tag = built
    folder = Path(ok(cli(home, "get", tag, "-o", "path")).strip())
    stripped = tmp_path / "stripped"
    shutil.copytree(folder, stripped, ignore=shutil.ignore_patterns("models"))
    result = cli(tmp_path / "empty-home", "import", str(stripped))
    assert result.returncode == 1 and "needs models" in result.stderr
    assert "doubler:" in result.stderr
    # with the model in the model store, the import takes it into the bento
    other = tmp_path / "with-model"
    shutil.copytree(home / "models", other / "models")
    ok(cli(other, "import", str(stripped)))
    assert list((other / "bentos" / "doubler_svc" / "v1" / "models" / "doubler").glob("*/model.yaml"))

"""``bentolite models ...`` through the installed console script."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from bentolite import models

BENTOLITE = shutil.which("bentolite")


def run(
    home: Path, *args: str, input: str | None = None, cwd: Path | None = None, columns: int = 200
):
    assert BENTOLITE, "the bentolite console script is not on PATH (run through scripts/test)"
    env = {**os.environ, "BENTOLITE_HOME": str(home), "COLUMNS": str(columns)}
    env.pop("BENTOLITE_DEBUG", None)
    return subprocess.run(
        [BENTOLITE, *args], capture_output=True, text=True, env=env, input=input, timeout=60,
        cwd=cwd,
    )


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_clean_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _save(name: str, payload: bytes = b"w" * 2048) -> models.Model:
    with models.create(name, module="bentoml.picklable_model") as model:
        Path(model.path_of("saved_model.pkl")).write_bytes(payload)
    return model


def test_console_script_is_the_installed_one():
    assert BENTOLITE and Path(BENTOLITE).parent == Path(sys.executable).parent


def test_list_table_json_yaml(home: Path):
    _save("iris:aaa")
    _save("iris:bbb")
    other = _save("other")
    table = run(home, "models", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["Tag", "Module", "Size", "Creation", "Time"]
    order = [line.split()[0] for line in lines[1:]]
    assert order == [str(other.tag), "iris:bbb", "iris:aaa"]  # newest first
    assert "bentoml.picklable_model" in lines[1] and "KiB" in lines[1]

    as_json = json.loads(ok(run(home, "models", "list", "iris", "-o", "json")))
    assert [row["tag"] for row in as_json] == ["iris:bbb", "iris:aaa"]
    assert set(as_json[0]) == {"tag", "module", "size", "creation_time"}
    as_yaml = yaml.safe_load(ok(run(home, "models", "list", "--output", "yaml")))
    assert [row["tag"] for row in as_yaml] == [str(other.tag), "iris:bbb", "iris:aaa"]


def test_table_never_cuts_a_tag_short(home: Path):
    model = _save("x" * 63)
    out = ok(run(home, "models", "list", columns=60))
    assert str(model.tag) in out.splitlines()[1].split()


def test_list_empty_store_and_missing_name(home: Path):
    empty = run(home, "models", "list", "-o", "json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    _save("iris_clf")
    assert_clean_error(run(home, "models", "list", "iris_cl"), "not found", "Did you mean: iris_clf")


def test_get_yaml_json_path(home: Path):
    model = _save("iris")
    as_yaml = run(home, "models", "get", "iris")
    assert as_yaml.returncode == 0
    assert yaml.safe_load(as_yaml.stdout) == models.get("iris").info.to_dict()
    assert json.loads(ok(run(home, "models", "get", "iris:latest", "-o", "json")))["version"] == (
        model.tag.version
    )
    path = run(home, "models", "get", f"iris:{model.tag.version[:5]}", "-o", "path")
    assert path.stdout.strip() == model.path


def test_get_errors(home: Path):
    _save("iris")
    assert_clean_error(run(home, "models", "get", "irsi"), "'irsi' is not found", "Did you mean: iris")
    assert_clean_error(run(home, "models", "get", "../x"), "Invalid tag", "lowercase letters")
    assert_clean_error(run(home, "models", "get", "iris:"), "Maybe you meant 'iris:latest'")
    assert_clean_error(run(home, "models", "get", "a" * 64), "64 characters")


def test_delete_with_and_without_confirmation(home: Path):
    first, second = _save("iris:v1"), _save("iris:v2")
    kept = run(home, "models", "delete", "iris:v1", input="n\n")
    assert kept.returncode == 0 and "Skipped iris:v1" in kept.stdout
    assert models.list("iris") == [first, second]
    gone = run(home, "models", "delete", "iris:v1", input="y\n")
    assert gone.returncode == 0 and "Deleted iris:v1" in gone.stdout
    assert models.list("iris") == [second]
    _save("iris:v3")
    every = run(home, "models", "delete", "iris", "-y")
    assert every.returncode == 0
    assert sorted(every.stdout.split()) == sorted(["Deleted", "iris:v2", "Deleted", "iris:v3"])
    assert models.list() == []
    assert_clean_error(run(home, "models", "delete", "iris:v1", "-y"), "'iris:v1' is not found")


def test_export_and_import(home: Path, tmp_path: Path):
    model = _save("iris")
    exported = run(home, "models", "export", "iris", str(tmp_path / "iris.bentomodel"))
    assert exported.returncode == 0, exported.stderr
    archive = tmp_path / "iris.bentomodel"
    assert str(archive) in exported.stdout
    with tarfile.open(archive, "r:xz") as tf:
        assert "model.yaml" in tf.getnames()
    default = run(home, "models", "export", "iris", cwd=tmp_path)
    assert default.returncode == 0
    assert (tmp_path / f"iris-{model.tag.version}.bentomodel").is_file()
    as_zip = run(home, "models", "export", "iris", str(tmp_path / "z"), "--format", "zip")
    assert as_zip.returncode == 0 and (tmp_path / "z").is_file()

    other_home = tmp_path / "other"
    imported = run(other_home, "models", "import", str(archive))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"Imported {model.tag}"
    assert (other_home / "models" / "iris" / model.tag.version / "saved_model.pkl").is_file()
    assert_clean_error(run(other_home, "models", "import", str(archive)), "already exists")
    assert_clean_error(run(home, "models", "import", str(tmp_path / "nope.bentomodel")), "does not exist")
    truncated = tmp_path / "truncated.bentomodel"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert_clean_error(run(tmp_path / "third", "models", "import", str(truncated)), "not a readable")
    assert_clean_error(run(home, "models", "export", "nope", str(tmp_path / "x")), "not found")


def test_lists_a_bentoml_home(home: Path):
    path = home / "models" / "iris_clf" / "2uo5fkgxj27exuqj"
    path.mkdir(parents=True)
    (path / "model.yaml").write_text(
        "name: iris_clf\nversion: 2uo5fkgxj27exuqj\nmodule: bentoml.sklearn\nlabels: {}\n"
        "options: {}\nmetadata: {}\ncontext:\n  framework_name: sklearn\n  framework_versions:\n"
        "    scikit-learn: 1.1.0\n  bentoml_version: 1.1.11\n  python_version: 3.10.12\n"
        "signatures:\n  predict:\n    batchable: false\napi_version: v1\n"
        "creation_time: '2023-11-01T08:36:52.456990+00:00'\n"
    )
    (path.parent / "latest").write_text("2uo5fkgxj27exuqj")
    out = run(home, "models", "list", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["tag"] == "iris_clf:2uo5fkgxj27exuqj"
    assert json.loads(out.stdout)[0]["module"] == "bentoml.sklearn"


def test_broken_model_yaml_is_one_clear_line(home: Path):
    path = home / "models" / "bad" / "v1"
    path.mkdir(parents=True)
    (path / "model.yaml").write_text("name: bad\nversion: [unclosed\n")
    assert_clean_error(run(home, "models", "get", "bad:v1"), "is not valid YAML")
    listed = run(home, "models", "list", "-o", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    assert "Skipping model bad:v1" in listed.stderr


@pytest.mark.parametrize("args", [["models", "--help"], ["--version"]])
def test_help_and_version(home: Path, args: list[str]):
    out = run(home, *args)
    assert out.returncode == 0 and out.stdout

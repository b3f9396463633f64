from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

import bentolite
from bentolite import models
from bentolite.exceptions import BentoMLException, NotFound
from bentolite.models import ModelContext, ModelSignature


def _save(name: str, payload: bytes = b"weights", **kwargs) -> models.Model:
    kwargs.setdefault("module", "bentoml.picklable_model")
    with models.create(name, **kwargs) as model:
        Path(model.path_of("weights.bin")).write_bytes(payload)
    return model


def test_create_get_round_trip(home: Path):
    ctx = ModelContext(framework_name="demo", framework_versions={"demo": "1.2"})
    saved = _save(
        "iris",
        labels={"owner": "team", "stage": 3},
        metadata={"acc": 0.9, "nested": {"k": [1, 2]}},
        signatures={"predict": {"batchable": True, "batch_dim": 1}, "proba": ModelSignature()},
        custom_objects={"classes": ["a", "b"]},
        context=ctx,
    )
    assert saved.path == str(home / "models" / "iris" / saved.tag.version)
    got = models.get("iris")
    assert got == saved and got.path == saved.path
    assert Path(got.path_of("weights.bin")).read_bytes() == b"weights"
    info = got.info
    assert info.labels == {"owner": "team", "stage": "3"}
    assert info.metadata == {"acc": 0.9, "nested": {"k": [1, 2]}}
    assert info.signatures["predict"] == ModelSignature(batchable=True, batch_dim=(1, 1))
    assert info.signatures["proba"] == ModelSignature()
    assert info.context.framework_name == "demo"
    assert info.context.framework_versions == {"demo": "1.2"}
    assert info.context.python_version.count(".") == 2
    assert info.context.bentoml_version == bentolite.__version__
    assert info.creation_time.tzinfo is not None
    assert info.creation_time <= datetime.now(timezone.utc)
    assert got.custom_objects == {"classes": ["a", "b"]}
    assert (home / "models" / "iris" / "latest").read_text() == saved.tag.version


def test_model_yaml_keys_follow_bentoml_order(home: Path):
    model = _save("ordered")
    data = yaml.safe_load(Path(model.path_of("model.yaml")).read_text())
    assert list(data) == [
        "name", "version", "module", "labels", "options", "metadata", "context",
        "signatures", "api_version", "creation_time",
    ]
    assert list(data["context"]) == [
        "framework_name", "framework_versions", "bentoml_version", "python_version",
    ]
    assert datetime.fromisoformat(data["creation_time"]).utcoffset().total_seconds() == 0


def test_explicit_version_latest_and_prefix(home: Path):
    first = _save("m:aaa111")
    second = _save("m:bbb222")
    assert models.get("m").tag.version == "bbb222"
    assert models.get("m:latest") == second
    assert models.get("m:aaa") == first
    assert models.get(first.tag) == first
    with pytest.raises(BentoMLException, match="already exists"):
        _save("m:aaa111")
    with pytest.raises(BentoMLException, match="reserved"):
        _save("m:latest")


def test_prefix_matching_several_versions_is_refused(home: Path):
    _save("m:abc1")
    _save("m:abc2")
    with pytest.raises(BentoMLException, match="matches several models: abc1, abc2"):
        models.get("m:abc")


def test_list_names_and_versions(home: Path):
    assert models.list() == []
    a1, a2, b1 = _save("a:v1"), _save("a:v2"), _save("b:v1")
    assert models.list() == [a1, a2, b1]
    assert models.list("a") == [a1, a2]
    assert models.list("a:v1") == [a1]
    assert models.list("a:v9") == []
    with pytest.raises(NotFound):
        models.list("nothing")


def test_get_missing_names_close_matches(home: Path):
    _save("iris_clf")
    with pytest.raises(NotFound, match=r"'iris_clg' is not found.*Did you mean: iris_clf\?"):
        models.get("iris_clg")
    with pytest.raises(NotFound, match="is not found") as info:
        models.get("zzzz")
    assert "Did you mean" not in str(info.value)
    with pytest.raises(NotFound, match=r"versions of 'iris_clf': \w{16}"):
        models.get("iris_clf:nope")


def test_invalid_names_are_refused_before_anything_is_written(home: Path):
    for bad in ("../x", "a/b", "", "x" * 64, "name:"):
        with pytest.raises(BentoMLException, match="tag|':'"):
            _save(bad)
    assert not (home / "models").exists() or not any((home / "models").iterdir())
    assert not (home.parent / "x").exists()


def test_uppercase_name_is_lowercased(home: Path, caplog):
    with caplog.at_level(logging.WARNING):
        model = _save("MyModel")
    assert model.tag.name == "mymodel"
    assert "lowercase" in caplog.text


def test_delete_moves_latest_and_removes_empty_names(home: Path):
    old = _save("m:v1")
    _save("m:v2")
    models.delete("m")  # latest
    assert models.list("m") == [old]
    assert (home / "models" / "m" / "latest").read_text() == "v1"
    models.delete("m:v1")
    assert not (home / "models" / "m").exists()
    with pytest.raises(NotFound):
        models.delete("m:v1")
    assert not [p for p in (home / "tmp").iterdir() if p.name.startswith("bentolite-")]


def test_exception_inside_create_saves_nothing(home: Path):
    with pytest.raises(RuntimeError, match="boom"):
        with models.create("broken", module="x") as model:
            Path(model.path_of("half")).write_bytes(b"x")
            raise RuntimeError("boom")
    with pytest.raises(NotFound):
        models.get("broken")
    assert not (home / "models" / "broken").exists()
    assert list((home / "tmp").glob("bentolite-*")) == []


def test_missing_or_dangling_latest_is_rebuilt_from_creation_time(home: Path):
    _save("m:zzz")  # sorts last, saved first
    newest = _save("m:aaa")
    latest = home / "models" / "m" / "latest"
    latest.unlink()
    assert models.get("m") == newest
    assert latest.read_text() == "aaa"
    latest.write_text("gone")
    assert models.get("m:latest") == newest
    assert latest.read_text() == "aaa"


def test_metadata_must_be_json_like(home: Path):
    with pytest.raises(ValueError, match=r"metadata.bad\[1\]: object is not a simple"):
        _save("m", metadata={"bad": [1, object()]})
    assert models.list() == []


def test_model_api(home: Path):
    model = _save("m")
    assert Path(model.path_of("a/b")) == Path(model.path) / "a" / "b"
    assert model.file_size > 0
    assert str(model) == f'Model(tag="{model.tag}")'
    assert model.path in repr(model)
    with pytest.raises(BentoMLException, match="cannot be constructed directly"):
        models.Model(model.info, model.path)
    assert model.custom_objects == {}


def test_home_defaults_to_bentolite_in_user_dir(monkeypatch, tmp_path):
    from bentolite.config import bentolite_home

    monkeypatch.delenv("BENTOLITE_HOME", raising=False)
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert bentolite_home() == tmp_path / "bentolite"
    monkeypatch.setenv("BENTOML_HOME", "$HOME/bm")
    assert bentolite_home() == tmp_path / "bm"
    monkeypatch.setenv("BENTOLITE_HOME", "~/bl")
    assert bentolite_home() == tmp_path / "bl"
    assert os.environ["HOME"] == str(tmp_path)


@pytest.mark.parametrize(
    "body, problem",
    [
        ("name: bad\nversion: v1\nmodule: x\nlabels: [1, 2]\n", "not a valid model.yaml"),
        ("name: bad\nversion: v1\nmodule: x\nsignatures: {p: {batch_dim: x}}\n", "not a valid model.yaml"),
        ("name: bad\nversion: v1\nmodule: x\nsignatures: {p: {bogus: 1}}\n", "unknown signature keys"),
        ("name: bad\nversion: ~\nmodule: x\n", "has no 'version'"),
        ("name: bad\nmodule: x\n", "missing the 'version' key"),
        ("name: bad\nversion: [v1\n", "not valid YAML"),
        ("- a\n", "does not hold a mapping"),
    ],
)
def test_broken_model_yaml_gives_a_clear_error(home: Path, body: str, problem: str):
    path = home / "models" / "bad" / "v1"
    path.mkdir(parents=True)
    (path / "model.yaml").write_text(body)
    with pytest.raises(BentoMLException, match=problem) as info:
        models.get("bad:v1")
    assert str(path / "model.yaml") in str(info.value)


def test_delete_by_name_with_a_missing_latest_file_deletes_the_newest(home: Path):
    old, _ = _save("m:zzz"), _save("m:aaa")
    (home / "models" / "m" / "latest").unlink()
    models.delete("m")
    assert models.list("m") == [old]
    assert (home / "models" / "m" / "latest").read_text() == "zzz"


def test_litter_of_a_killed_latest_writer_is_swept(home: Path):
    _save("m:v1")
    litter = home / "models" / "m" / ".latest-k1ll3d"
    litter.write_text("v")
    _save("m:v2")
    assert not litter.exists()
    assert (home / "models" / "m" / "latest").read_text() == "v2"


def test_list_skips_a_broken_model_with_a_warning(home: Path, caplog):
    good = _save("m:good")
    broken = home / "models" / "m" / "bad"
    broken.mkdir()
    (broken / "model.yaml").write_text("name: m\nversion: [bad\n")
    with caplog.at_level(logging.WARNING, logger="bentolite.models.store"):
        assert models.list() == [good]
        assert models.list("m") == [good]
    assert "Skipping model m:bad" in caplog.text and "not valid YAML" in caplog.text
    with pytest.raises(BentoMLException, match="not valid YAML"):
        models.get("m:bad")


def test_latest_and_delete_work_beside_a_broken_model(home: Path):
    first, second = _save("m:v1"), _save("m:v2")
    broken = home / "models" / "m" / "v0"
    broken.mkdir()
    (broken / "model.yaml").write_text("- not a mapping\n")
    (home / "models" / "m" / "latest").unlink()
    assert models.get("m") == second
    models.delete("m:v2")
    assert models.get("m") == first

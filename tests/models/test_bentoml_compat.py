"""A store and archives written the way BentoML 1.1 writes them."""
from __future__ import annotations

import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

import bentolite
from bentolite import models
from bentolite.models import ModelOptions, ModelSignature
from bentolite.models.model import PartialKwargsModelOptions

from bentoml_layout import write_bentoml_model


def test_lists_and_gets_models_of_a_bentoml_home(bentoml_home: Path):
    assert [str(m.tag) for m in models.list()] == [
        "doubler:abcdefghijklmnop", "iris_clf:2uo5fkgxj27exuqj", "iris_clf:qfd6z2gxj2ax3uqj",
    ]
    iris = models.get("iris_clf")
    assert iris.tag.version == "qfd6z2gxj2ax3uqj"
    assert models.get("iris_clf:2uo5").tag.version == "2uo5fkgxj27exuqj"
    info = iris.info
    assert info.module == "bentoml.sklearn"
    assert info.labels == {"owner": "bentoml-team", "stage": "dev"}
    assert info.metadata == {"acc": 0.96, "classes": ["setosa", "versicolor"]}
    assert info.context.framework_name == "sklearn"
    assert info.context.framework_versions == {"scikit-learn": "1.1.0"}
    assert info.context.bentoml_version == "1.1.11"
    assert info.context.python_version == "3.10.12"
    assert info.signatures == {
        "predict": ModelSignature(batchable=True, batch_dim=(0, 1)),
        "predict_proba": ModelSignature(batchable=False),
    }
    assert info.api_version == "v1"
    assert info.creation_time == datetime(2023, 11, 2, 8, tzinfo=timezone.utc)
    assert type(info.options) is ModelOptions
    # reading never rewrites BentoML's files
    assert (bentoml_home / "models" / "iris_clf" / "latest").read_text() == "qfd6z2gxj2ax3uqj"


def test_picklable_model_saved_by_bentoml_loads_and_runs(bentoml_home: Path):
    model = bentolite.picklable_model.get("doubler")
    assert isinstance(model.info.options, PartialKwargsModelOptions)
    assert bentolite.picklable_model.load_model("doubler")(21) == 42
    runnable = model.with_options(partial_kwargs={"__call__": {"factor": 3}}).to_runnable()
    assert runnable.methods()["__call__"].config.batch_dim == (0, 1)
    assert runnable()(5) == 15


def test_saving_next_to_bentoml_models_and_deleting_keeps_bentoml_layout(bentoml_home: Path):
    with models.create("iris_clf", module="bentoml.sklearn") as new:
        Path(new.path_of("saved_model.pkl")).write_bytes(b"x")
    latest = bentoml_home / "models" / "iris_clf" / "latest"
    assert latest.read_text() == new.tag.version  # no newline, as BentoML writes it
    models.delete("iris_clf:latest")
    assert latest.read_text() == "qfd6z2gxj2ax3uqj"


def test_bentoml_1_0_model_yaml_is_read(home: Path):
    path = home / "models" / "old" / "v1"
    path.mkdir(parents=True)
    (path / "model.yaml").write_text(
        "name: old\nversion: v1\nbentoml_version: 1.0.0rc1\nmodule: bentoml.sklearn\n"
        "labels: {}\noptions: {}\nmetadata: {}\n"
        "context:\n  framework_name: sklearn\n  pip_dependencies:\n  - scikit-learn==1.0.2\n"
        "  bentoml_version: 1.0.0rc1\n  python_version: 3.9.7\n"
        "api_version: v1\ncreation_time: '2022-05-19T08:36:52.456990+00:00'\n"
    )
    old = models.get("old")  # no latest file: rebuilt
    assert old.info.signatures == {}
    assert old.info.context.framework_versions == {}
    assert (home / "models" / "old" / "latest").read_text() == "v1"


def test_import_a_bentomodel_built_by_bentoml(home: Path, tmp_path: Path):
    import cloudpickle

    src = write_bentoml_model(
        tmp_path / "build", "doubler", "abcdefghijklmnop", module="bentoml.picklable_model",
        files={"saved_model.pkl": cloudpickle.dumps(lambda x: x * 2), "extra/notes.txt": b"hi"},
    )
    archive = tmp_path / "doubler-abcdefghijklmnop.bentomodel"
    with tarfile.open(archive, "w:xz") as tf:  # the directory's contents, no top-level folder
        for path in sorted(src.rglob("*")):
            tf.add(path, path.relative_to(src).as_posix(), recursive=False)
    imported = models.import_model(str(archive))
    assert str(imported.tag) == "doubler:abcdefghijklmnop"
    assert imported.info.signatures["__call__"].batch_dim == (0, 1)
    assert Path(imported.path_of("extra/notes.txt")).read_bytes() == b"hi"
    assert bentolite.picklable_model.load_model(imported)(4) == 8


def test_exported_bentomodel_is_what_bentoml_imports(home: Path, tmp_path: Path):
    model = bentolite.picklable_model.save_model("mine", len)
    out = models.export_model("mine", str(tmp_path) + "/")
    with tarfile.open(out, "r:xz") as tf:
        assert set(tf.getnames()) == {"model.yaml", "saved_model.pkl"}
        text = tf.extractfile("model.yaml").read().decode()
    assert f"version: {model.tag.version}\nmodule: bentoml.picklable_model\n" in text
    assert "api_version: v1\ncreation_time: '" in text


@pytest.mark.parametrize("version", ["20230101", "1"])
def test_unquoted_numeric_version_in_model_yaml(home: Path, version: str):
    path = write_bentoml_model(home / "models", "num", version)
    text = (path / "model.yaml").read_text()
    assert f"version: {version}\n" in text
    assert models.get(f"num:{version}").tag.version == version

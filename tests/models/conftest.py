from __future__ import annotations

from pathlib import Path

import pytest

from bentoml_layout import write_bentoml_model


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty BENTOLITE_HOME for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("BENTOLITE_HOME", str(path))
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    return path


@pytest.fixture
def bentoml_home(home: Path) -> Path:
    """A BentoML 1.1 home: two sklearn versions and one picklable model, ``latest`` files
    without a trailing newline, plus BentoML's other top-level dirs."""
    import cloudpickle

    models_dir = home / "models"
    for extra in ("bentos", "envs", "tmp"):
        (home / extra).mkdir(parents=True)
    write_bentoml_model(models_dir, "iris_clf", "2uo5fkgxj27exuqj", created="2023-11-01T08:00:00+00:00")
    write_bentoml_model(models_dir, "iris_clf", "qfd6z2gxj2ax3uqj", created="2023-11-02T08:00:00+00:00")
    (models_dir / "iris_clf" / "latest").write_text("qfd6z2gxj2ax3uqj")
    write_bentoml_model(
        models_dir, "doubler", "abcdefghijklmnop", module="bentoml.picklable_model",
        files={"saved_model.pkl": cloudpickle.dumps(lambda x, factor=2: x * factor)},
    )
    (models_dir / "doubler" / "latest").write_text("abcdefghijklmnop")
    return home

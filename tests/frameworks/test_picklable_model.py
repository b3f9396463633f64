from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bentolite
from bentolite import picklable_model
from bentolite.exceptions import NotFound
from bentolite.models import ModelSignature


class Scaler:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return x * self.factor

    def predict(self, rows: list[int], offset: int = 0) -> list[int]:
        return [r * self.factor + offset for r in rows]


def test_save_load_round_trip(home: Path):
    saved = picklable_model.save_model(
        "scaler", Scaler(3), labels={"team": "ml"}, metadata={"factor": 3},
        custom_objects={"note": "hi"},
    )
    assert saved.path.startswith(str(home / "models" / "scaler"))
    assert saved.info.to_dict() == picklable_model.get("scaler").info.to_dict()
    info = picklable_model.get("scaler").info
    assert info.module == "bentoml.picklable_model"
    assert info.api_version == "v1"
    assert info.context.framework_name == "cloudpickle"
    assert set(info.context.framework_versions) == {"cloudpickle"}
    assert info.signatures == {"__call__": ModelSignature(batchable=False)}
    assert info.labels == {"team": "ml"} and info.metadata == {"factor": 3}
    assert Path(saved.path_of("saved_model.pkl")).is_file()
    loaded = picklable_model.load_model("scaler:latest")
    assert isinstance(loaded, Scaler) and loaded(2) == 6
    assert picklable_model.load_model(saved)(1) == 3
    assert saved.custom_objects == {"note": "hi"}
    assert bentolite.models.get("scaler").load_model()(5) == 15


def test_get_refuses_a_model_of_another_framework(home: Path):
    with bentolite.models.create("other", module="bentoml.sklearn") as model:
        Path(model.path_of("saved_model.pkl")).write_bytes(b"")
    with pytest.raises(NotFound, match="saved with module bentoml.sklearn, not loading with"):
        picklable_model.get("other")
    with pytest.raises(NotFound, match="saved with module"):
        picklable_model.load_model("other")


def test_runnable_instantiated_directly(home: Path):
    model = picklable_model.save_model(
        "scaler", Scaler(2),
        signatures={"predict": {"batchable": True, "batch_dim": 0}, "__call__": {"batchable": False}},
    )
    runnable = model.to_runnable()
    assert runnable is model.to_runnable()  # cached on the model
    assert runnable.__name__ == "PicklableRunnable"
    assert runnable.SUPPORTED_RESOURCES == ("cpu",)
    assert runnable.SUPPORTS_CPU_MULTI_THREADING is False
    methods = runnable.methods()
    assert set(methods) == {"predict", "__call__"}
    assert methods["predict"].config.batchable and methods["predict"].config.batch_dim == (0, 0)
    assert not methods["__call__"].config.batchable
    instance = runnable()
    assert instance.predict([1, 2]) == [2, 4]
    assert instance(7) == 14


def test_partial_kwargs_via_with_options(home: Path):
    model = picklable_model.save_model("scaler", Scaler(1), signatures={"predict": {"batchable": True}})
    tuned = picklable_model.get("scaler").with_options(partial_kwargs={"predict": {"offset": 10}})
    assert tuned.tag == model.tag
    assert picklable_model.get("scaler").info.options.partial_kwargs == {}
    instance = picklable_model.get_runnable(tuned)()
    assert instance.predict([1]) == [11]
    assert instance.predict([1], offset=0) == [1]  # call kwargs win


def test_external_modules_are_pickled_by_value(home: Path, tmp_path: Path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "my_user_model.py").write_text(
        "class Doubler:\n    def __call__(self, x):\n        return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(src))
    import my_user_model

    try:
        picklable_model.save_model(
            "ext", my_user_model.Doubler(), external_modules=[my_user_model],
            custom_objects={"cls": my_user_model.Doubler},
        )
    finally:
        sys.modules.pop("my_user_model", None)
    # a fresh interpreter that cannot import my_user_model still loads it
    code = textwrap.dedent(
        """
        import bentolite
        model = bentolite.picklable_model.get("ext")
        print(model.load_model()(21), model.custom_objects["cls"]()(1))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42", "2"]


def test_failing_pickle_saves_nothing(home: Path):
    import threading

    with pytest.raises(TypeError):
        picklable_model.save_model("locky", threading.Lock())
    with pytest.raises(NotFound):
        bentolite.models.get("locky")
    assert list((home / "tmp").glob("bentolite-*")) == []

"""Fixtures for framework tests: one tmp store per session, tiny models built once."""
from __future__ import annotations

from pathlib import Path

import pytest

import bentolite
from bentolite.testing import (
    offline_easyocr_reader,
    render_text_image,
    tiny_bert_pipeline,
    tiny_catboost_regressor,
    tiny_gpt2_pipeline,
    tiny_lightgbm_booster,
    tiny_onnx_model,
    tiny_torch_mlp,
    tiny_xgboost_booster,
)

OCR_TEXT = "Hello World 42"


@pytest.fixture(scope="session")
def store_home(tmp_path_factory: pytest.TempPathFactory):
    """A fresh ``BENTOLITE_HOME`` for the whole session (models are saved once and shared)."""
    home = tmp_path_factory.mktemp("bentolite_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOLITE_HOME", str(home))
        mp.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        yield home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty BENTOLITE_HOME for one test (instead of the session's shared store)."""
    path = tmp_path / "home"
    monkeypatch.setenv("BENTOLITE_HOME", str(path))
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    return path


@pytest.fixture(autouse=True)
def _use_store_home(store_home, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BENTOLITE_HOME", str(store_home))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


# --- tiny models, built and saved once per session -------------------------------------

@pytest.fixture(scope="session")
def mlp():
    return tiny_torch_mlp(seed=1)


@pytest.fixture(scope="session")
def saved_mlp(store_home, mlp):
    return bentolite.pytorch.save_model(
        "tiny-mlp",
        mlp,
        signatures={"__call__": {"batchable": True, "batch_dim": 0}},
        labels={"owner": "tests"},
        metadata={"n_features": 4},
    )


@pytest.fixture(scope="session")
def booster_and_data():
    return tiny_xgboost_booster(seed=2)


@pytest.fixture(scope="session")
def saved_booster(store_home, booster_and_data):
    booster, _ = booster_and_data
    return bentolite.xgboost.save_model("tiny-booster", booster, metadata={"rounds": 5})


@pytest.fixture(scope="session")
def generator():
    return tiny_gpt2_pipeline(seed=0)


@pytest.fixture(scope="session")
def classifier():
    return tiny_bert_pipeline(seed=0)


@pytest.fixture(scope="session")
def saved_generator(store_home, generator):
    return bentolite.transformers.save_model("tiny-gpt2-generation", generator)


@pytest.fixture(scope="session")
def saved_classifier(store_home, classifier):
    return bentolite.transformers.save_model("tiny-bert-classification", classifier)


@pytest.fixture(scope="session")
def reader():
    return offline_easyocr_reader()


@pytest.fixture(scope="session")
def saved_reader(store_home, reader):
    return bentolite.easyocr.save_model("tiny-ocr-en", reader)


@pytest.fixture(scope="session")
def text_image():
    return render_text_image(OCR_TEXT, font_size=36)


@pytest.fixture(scope="session")
def ocr_text():
    return OCR_TEXT


@pytest.fixture(scope="session")
def onnx_model():
    return tiny_onnx_model(seed=3)


@pytest.fixture(scope="session")
def saved_onnx(store_home, onnx_model):
    return bentolite.onnx.save_model("tiny-onnx", onnx_model, signatures={"run": {"batchable": True}})


@pytest.fixture(scope="session")
def lightgbm_and_data():
    return tiny_lightgbm_booster(seed=4)


@pytest.fixture(scope="session")
def saved_lightgbm(store_home, lightgbm_and_data):
    booster, _ = lightgbm_and_data
    return bentolite.lightgbm.save_model("tiny-lightgbm", booster, signatures={"predict": {"batchable": True}})


@pytest.fixture(scope="session")
def catboost_and_data():
    return tiny_catboost_regressor(seed=5)


@pytest.fixture(scope="session")
def saved_catboost(store_home, catboost_and_data):
    model, _ = catboost_and_data
    return bentolite.catboost.save_model("tiny-catboost", model, signatures={"predict": {"batchable": True}})


@pytest.fixture(scope="session")
def script_mlp(mlp):
    import torch

    return torch.jit.script(mlp)


@pytest.fixture(scope="session")
def saved_script_mlp(store_home, script_mlp):
    return bentolite.torchscript.save_model(
        "tiny-script-mlp", script_mlp, signatures={"__call__": {"batchable": True}},
        _extra_files={"vocab.txt": "a b c"},
    )

"""Behaviour shared by every framework module: names, missing libraries, wrong-framework get."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import bentolite
from bentolite.exceptions import MissingDependencyException, NotFound
from bentolite.frameworks import require

FRAMEWORKS = {
    # module: (v1 MODULE_NAME, API_VERSION, library, pip extra)
    "pytorch": ("bentoml.pytorch", "v1", "torch", "pytorch"),
    "transformers": ("bentoml.transformers", "v2", "transformers", "transformers"),
    "xgboost": ("bentoml.xgboost", "v2", "xgboost", "xgboost"),
    "easyocr": ("bentoml.easyocr", "v2", "easyocr", "easyocr"),
    "picklable_model": ("bentoml.picklable_model", "v1", None, None),
    "sklearn": ("bentoml.sklearn", "v1", "sklearn", "sklearn"),
    "onnx": ("bentoml.onnx", "v2", "onnx", "onnx"),
    "lightgbm": ("bentoml.lightgbm", "v1", "lightgbm", "lightgbm"),
    "torchscript": ("bentoml.torchscript", "v1", "torch", "torchscript"),
    "catboost": ("bentoml.catboost", "v1", "catboost", "catboost"),
}


@pytest.mark.parametrize("name", sorted(FRAMEWORKS))
def test_module_shape(name):
    module = getattr(bentolite, name)
    module_name, api_version, _, _ = FRAMEWORKS[name]
    assert module.MODULE_NAME == module_name
    assert module.API_VERSION == api_version
    for attr in ("save_model", "load_model", "get", "get_runnable", "ModelOptions"):
        assert callable(getattr(module, attr)), attr


def test_require_names_the_extra():
    with pytest.raises(MissingDependencyException) as info:
        require("bentolite_no_such_module_xyz", "pytorch")
    assert "pip install 'bentolite[pytorch]'" in str(info.value)
    assert "bentolite_no_such_module_xyz" in str(info.value)


@pytest.mark.parametrize("name", sorted(n for n, spec in FRAMEWORKS.items() if spec[2]))
def test_missing_library_error_names_extra(name, monkeypatch):
    _, _, library, extra = FRAMEWORKS[name]
    module = importlib.import_module(f"bentolite.frameworks.{name}")
    # A None entry in sys.modules makes `import <library>` raise ImportError, as if uninstalled.
    monkeypatch.setitem(sys.modules, library, None)
    with pytest.raises(MissingDependencyException) as info:
        module.save_model("needs-library", object())
    assert f"pip install 'bentolite[{extra}]'" in str(info.value)
    assert all(m.tag.name != "needs-library" for m in bentolite.models.list())


def test_wrong_framework_get_is_refused():
    saved = bentolite.picklable_model.save_model("plain-callable", len)
    for name in sorted(set(FRAMEWORKS) - {"picklable_model"}):
        with pytest.raises(NotFound, match="bentoml.picklable_model"):
            getattr(bentolite, name).get(saved.tag)
        with pytest.raises(NotFound):
            getattr(bentolite, name).load_model(saved.tag)
    assert bentolite.picklable_model.get(saved.tag) == saved


def test_frameworks_and_testing_import_without_heavy_libraries():
    heavy = ["torch", "transformers", "xgboost", "easyocr", "pandas", "tokenizers", "onnx", "onnxruntime",
             "lightgbm", "catboost"]
    code = (
        "import sys, bentolite, bentolite.testing; "
        + "".join(f"import bentolite.frameworks.{name}; " for name in FRAMEWORKS)
        + f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("visible", "assigned"), [(None, False), ("", False), ("-1", False), ("0", True), ("1,2", True), ("GPU-8f1c", True)]
)
def test_gpu_assignment_follows_cuda_visible_devices(visible, assigned, monkeypatch):
    from bentolite.frameworks._device import assigned_gpu

    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert assigned_gpu() is assigned


def test_non_numeric_cuda_visible_devices_is_refused(monkeypatch):
    from bentolite.frameworks._device import assigned_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "cuda0")
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES"):
        assigned_gpu()


def test_cpu_threads_follow_omp_num_threads(monkeypatch):
    from bentolite.frameworks._device import cpu_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads() >= 1


def test_assigned_gpu_without_cuda_falls_back_to_cpu(monkeypatch):
    torch = pytest.importorskip("torch")
    from bentolite.frameworks._device import torch_device

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert torch_device() == ("cuda:0" if torch.cuda.is_available() else "cpu")

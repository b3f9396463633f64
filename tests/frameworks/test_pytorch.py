"""bentolite.pytorch: save, list, get, load and run a tiny MLP; outputs equal the original's."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bentolite

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")

from bentolite.frameworks import package_version  # noqa: E402


class Scaler(torch.nn.Module):
    """Takes integer indices too, to check dtypes are kept."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 3)

    def forward(self, ids, scale=1.0):
        return self.embedding(ids) * scale


def test_save_list_get_load(saved_mlp, mlp):
    assert saved_mlp in bentolite.models.list("tiny-mlp")
    got = bentolite.pytorch.get("tiny-mlp:latest")
    assert got == saved_mlp
    assert got.info.module == "bentoml.pytorch"
    assert got.info.context.framework_name == "torch"
    assert got.info.context.framework_versions == {"torch": package_version("torch")}
    assert got.info.signatures["__call__"].batchable is True
    assert got.info.labels == {"owner": "tests"}
    assert got.info.options.partial_kwargs == {}
    assert os.path.isfile(got.path_of("saved_model.pt"))
    loaded = bentolite.pytorch.load_model(got)
    x = torch.randn(5, 4)
    assert torch.equal(loaded(x), mlp(x))


def test_save_refuses_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        bentolite.pytorch.save_model("not-a-module", lambda x: x)


def test_runnable_matches_original_for_numpy_pandas_and_tensor(saved_mlp, mlp):
    runnable = bentolite.pytorch.get_runnable(saved_mlp)()
    assert runnable.device == "cpu"
    assert runnable.model.training is False
    x = np.random.default_rng(0).normal(size=(6, 4))  # float64: cast to float32
    expected = mlp(torch.from_numpy(x.astype(np.float32)))
    out = runnable.__call__(x)
    assert isinstance(out, torch.Tensor)
    assert torch.equal(out, expected)
    assert not out.requires_grad
    assert torch.equal(runnable.__call__(pd.DataFrame(x)), expected)
    assert torch.equal(runnable.__call__(torch.from_numpy(x.astype(np.float32))), expected)
    methods = type(runnable).bentoml_runnable_methods__
    assert methods["__call__"].config.batchable is True
    assert methods["__call__"].config.batch_dim == (0, 0)
    assert "nvidia.com/gpu" in type(runnable).SUPPORTED_RESOURCES


def test_integer_inputs_keep_their_dtype_and_partial_kwargs_apply(store_home):
    module = Scaler().eval()
    saved = bentolite.pytorch.save_model("tiny-embedding", module)
    saved = saved.with_options(partial_kwargs={"__call__": {"scale": 2.0}})
    runnable = bentolite.pytorch.get_runnable(saved)()
    ids = np.array([[1, 2], [3, 4]], dtype=np.int64)
    expected = module(torch.from_numpy(ids), scale=2.0)
    assert torch.equal(runnable.__call__(ids), expected)
    assert torch.equal(runnable.__call__(ids, scale=3.0), module(torch.from_numpy(ids), scale=3.0))


def test_loading_warns_when_torch_version_differs(mlp, caplog):
    saved = bentolite.pytorch.save_model("tiny-mlp-old-torch", mlp)
    # Rewrite model.yaml as if saved by another torch, then read the model back from disk.
    info = saved.info
    info.context.framework_versions["torch"] = "0.0.1"
    info.dump(saved.path)
    reread = bentolite.pytorch.get(saved.tag)
    with caplog.at_level("WARNING", logger="bentolite.frameworks"):
        bentolite.pytorch.load_model(reread)
    assert any("saved with torch 0.0.1" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU placement needs one")
def test_runnable_uses_assigned_gpu(saved_mlp, mlp, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    runnable = bentolite.pytorch.get_runnable(saved_mlp)()
    assert runnable.device == "cuda:0"
    assert next(runnable.model.parameters()).is_cuda
    x = np.ones((2, 4), dtype=np.float32)
    out = runnable.__call__(x)
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), mlp(torch.from_numpy(x)))

"""bentolite.torchscript: ScriptModules with torch.jit.save/load, extra files, the pytorch runnable."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import bentolite
from bentolite.frameworks import package_version


def test_save_get_load_with_extra_files(saved_script_mlp, mlp):
    got = bentolite.torchscript.get("tiny-script-mlp")
    assert got.tag == saved_script_mlp.tag
    assert got.info.module == "bentoml.torchscript" and got.info.api_version == "v1"
    assert got.info.context.framework_name == "torchscript"
    assert got.info.context.framework_versions == {"torch": package_version("torch")}
    assert got.info.metadata == {"_extra_files": ["vocab.txt"]}
    assert os.path.isfile(got.path_of("saved_model.pt"))
    extra = {"vocab.txt": ""}
    loaded = bentolite.torchscript.load_model(got, _extra_files=extra)
    assert isinstance(loaded, torch.jit.ScriptModule)
    assert extra == {"vocab.txt": b"a b c"}
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), mlp(x))


def test_runnable_converts_arrays_on_its_device(saved_script_mlp, mlp):
    runnable = bentolite.torchscript.get_runnable(saved_script_mlp)()
    assert type(runnable).SUPPORTED_RESOURCES == ("nvidia.com/gpu", "cpu")
    assert runnable.device == "cpu" and not runnable.model.training
    x = np.random.default_rng(1).normal(size=(2, 4))  # float64 becomes float32, as bentolite.pytorch
    assert torch.equal(runnable(x), mlp(torch.from_numpy(x.astype(np.float32))))


def test_save_refuses_an_eager_module(mlp):
    with pytest.raises(TypeError, match="ScriptModule"):
        bentolite.torchscript.save_model("eager-mlp", mlp)

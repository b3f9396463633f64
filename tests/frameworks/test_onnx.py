"""bentolite.onnx: ModelProto in, InferenceSession out; the runnable casts inputs and picks providers."""
from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

import bentolite
from bentolite.exceptions import BentoMLException, InvalidArgument
from bentolite.testing import tiny_onnx_model


def reference(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})


def test_save_get_load(saved_onnx, onnx_model):
    got = bentolite.onnx.get("tiny-onnx")
    assert got.tag == saved_onnx.tag
    assert got.info.module == "bentoml.onnx" and got.info.api_version == "v2"
    assert got.info.context.framework_name == "onnx"
    assert got.info.context.framework_versions == {"onnx": onnx.__version__, "onnxruntime": ort.__version__}
    (spec,) = got.info.options.input_specs["run"]
    assert spec["name"] == "x" and spec["type"]["tensorType"]["elemType"] == onnx.TensorProto.FLOAT
    assert [s["name"] for s in got.info.options.output_specs["run"]] == ["y", "rows"]
    assert got.info.options.session_options is None
    assert os.path.isfile(got.path_of("saved_model.onnx"))
    session = bentolite.onnx.load_model(got)
    assert isinstance(session, ort.InferenceSession)
    assert session.get_providers() == ["CPUExecutionProvider"]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], reference(onnx_model, x)[0])


def test_default_signature_is_run_and_only_run(store_home, onnx_model):
    saved = bentolite.onnx.save_model("tiny-onnx-default", onnx_model)
    assert saved.info.signatures["run"].batchable is False
    with pytest.raises(BentoMLException, match="'run'"):
        bentolite.onnx.save_model("tiny-onnx-bad", onnx_model, signatures={"predict": {}})
    with pytest.raises(TypeError, match="onnx.ModelProto"):
        bentolite.onnx.save_model("not-onnx", object())


def test_runnable_casts_numpy_pandas_lists_and_tensors(saved_onnx, onnx_model):
    runnable = bentolite.onnx.get_runnable(saved_onnx)()
    x = np.random.default_rng(0).normal(size=(3, 4))  # float64: cast to the graph's float32
    y, rows = reference(onnx_model, x)
    for value in (x, pd.DataFrame(x), x.tolist(), torch.from_numpy(x)):
        out_y, out_rows = runnable.run(value)  # two outputs: a tuple
        np.testing.assert_allclose(out_y, y, rtol=1e-6)
        np.testing.assert_array_equal(out_rows, rows)
    assert runnable.model.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(InvalidArgument, match=r"1 positional input\(s\) \['x'\], got 2"):
        runnable.run(x, x)
    with pytest.raises(InvalidArgument, match="numpy arrays"):
        runnable.run("not an array")


def test_providers_follow_the_assigned_device(saved_onnx, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    runnable = bentolite.onnx.get_runnable(saved_onnx)()
    assert runnable.model.get_session_options().intra_op_num_threads == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    runnable = bentolite.onnx.get_runnable(saved_onnx)()
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert runnable.model.get_providers()[0] == ("CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider")
    chosen = saved_onnx.with_options(providers=["CPUExecutionProvider"])
    assert bentolite.onnx.get_runnable(chosen)().model.get_providers() == ["CPUExecutionProvider"]


def test_unknown_provider_is_refused(saved_onnx):
    with pytest.raises(BentoMLException, match="NoSuchExecutionProvider"):
        bentolite.onnx.load_model(saved_onnx, providers=["NoSuchExecutionProvider"])


def test_sequence_and_map_inputs_are_cast(store_home):
    from onnx import TensorProto, helper

    seq = helper.make_tensor_sequence_value_info("xs", TensorProto.FLOAT, None)
    out = helper.make_tensor_value_info("first", TensorProto.FLOAT, None)
    position = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    graph = helper.make_graph(
        [helper.make_node("SequenceAt", ["xs", "zero"], ["first"])], "seq", [seq], [out], initializer=[position]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    saved = bentolite.onnx.save_model("tiny-onnx-seq", model)
    runnable = bentolite.onnx.get_runnable(saved)()
    first = runnable.run([[1, 2], np.array([3.0])])  # ints in a list: cast to float32
    assert first.dtype == np.float32 and first.tolist() == [1.0, 2.0]


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    import sys

    from bentolite.exceptions import MissingDependencyException

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyException, match=r"bentolite\[onnx\]"):
        bentolite.onnx.save_model("needs-onnxruntime", tiny_onnx_model())

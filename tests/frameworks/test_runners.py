"""Each framework's model through ``model.to_runner()``: in-process and in a real worker."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bentolite

from bentolite.runner.process import RunnerWorkerGroup

from . import runner_targets

torch = pytest.importorskip("torch")
xgb = pytest.importorskip("xgboost")

ROOT = str(Path(__file__).resolve().parents[2])
GREEDY = {"max_new_tokens": 6, "do_sample": False}


def run_in_worker(attr: str, tmp_path: Path, body: Any) -> Any:
    """Start one worker for target ``attr``, run ``await body(runner)``, stop the worker."""
    runner = runner_targets.runner_for(attr)

    async def main() -> Any:
        target = f"tests.frameworks.runner_targets:{attr}"
        async with RunnerWorkerGroup(runner, target, tmp_path / "run", working_dir=ROOT, worker_count=1) as group:
            runner.init_client(group.addresses)
            try:
                return await body(runner)
            finally:
                runner.destroy()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def saved_batch_echo(store_home):
    return bentolite.pytorch.save_model(
        "tiny-batch-echo",
        runner_targets.make_batch_echo(),
        signatures={"__call__": {"batchable": True, "batch_dim": 0}},
    )


# --- in process (init_local) ---------------------------------------------------------


def test_pytorch_runner_local(saved_mlp, mlp):
    runner = saved_mlp.to_runner(name="local-mlp")
    runner.init_local(quiet=True)
    try:
        x = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
        expected = mlp(torch.from_numpy(x))
        assert torch.equal(runner.run(x), expected)
        assert torch.equal(asyncio.run(runner.async_run(x)), expected)
    finally:
        runner.destroy()


def test_xgboost_runner_local(saved_booster, booster_and_data):
    booster, features = booster_and_data
    runner = saved_booster.to_runner(name="local-booster")
    runner.init_local(quiet=True)
    try:
        np.testing.assert_array_equal(runner.predict.run(features), booster.predict(xgb.DMatrix(features)))
    finally:
        runner.destroy()


def test_transformers_runner_local(saved_generator, generator, saved_classifier, classifier):
    gen = saved_generator.to_runner(name="local-generator")
    cls = bentolite.transformers.get(saved_classifier.tag).to_runner(name="local-classifier")
    gen.init_local(quiet=True)
    cls.init_local(quiet=True)
    try:
        assert gen.run("the quick brown", **GREEDY) == generator("the quick brown", **GREEDY)
        assert asyncio.run(cls.async_run("good service")) == classifier("good service")
    finally:
        gen.destroy()
        cls.destroy()


def test_easyocr_runner_local(saved_reader, text_image, ocr_text):
    runner = saved_reader.to_runner(name="local-ocr")
    runner.init_local(quiet=True)
    try:
        assert runner.readtext.run(text_image, detail=0) == [ocr_text]
    finally:
        runner.destroy()


def test_new_frameworks_runners_local(saved_onnx, onnx_model, saved_lightgbm, lightgbm_and_data,
                                      saved_catboost, catboost_and_data, saved_script_mlp, mlp):
    booster, features = lightgbm_and_data
    catboost_model, cat_features = catboost_and_data
    runners = {
        name: model.to_runner(name=f"local-{name}")
        for name, model in (("onnx", saved_onnx), ("lightgbm", saved_lightgbm),
                            ("catboost", saved_catboost), ("torchscript", saved_script_mlp))
    }
    for runner in runners.values():
        runner.init_local(quiet=True)
    try:
        y, rows = runners["onnx"].run.run(features[:3])
        np.testing.assert_allclose(y, features[:3] @ onnx_weights(onnx_model) + onnx_bias(onnx_model), rtol=1e-5)
        assert rows[:, 0].tolist() == [3.0, 3.0, 3.0]
        np.testing.assert_array_equal(runners["lightgbm"].predict.run(features), booster.predict(features))
        np.testing.assert_array_equal(
            asyncio.run(runners["catboost"].predict.async_run(cat_features)), catboost_model.predict(cat_features)
        )
        x = features[:2]
        assert torch.equal(runners["torchscript"].run(x), mlp(torch.from_numpy(x)))
    finally:
        for runner in runners.values():
            runner.destroy()


def onnx_weights(model: Any) -> np.ndarray:
    from onnx import numpy_helper

    return next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "W")


def onnx_bias(model: Any) -> np.ndarray:
    from onnx import numpy_helper

    return next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "b")


# --- in a real worker process --------------------------------------------------------


def test_pytorch_worker_batches_concurrent_calls(saved_batch_echo, tmp_path):
    async def body(runner: bentolite.Runner) -> list[Any]:
        rows = [np.full((1, 3), float(i), dtype=np.float32) for i in range(24)]
        return await asyncio.gather(*(runner.async_run(r) for r in rows))

    results = run_in_worker("batch_echo_runner", tmp_path, body)
    assert [float(r[0, 0]) for r in results] == [float(i) for i in range(24)]
    assert all(r.shape == (1, 2) for r in results)
    batch_sizes = [float(r[0, 1]) for r in results]
    assert max(batch_sizes) > 1, f"no call was batched: {batch_sizes}"


def test_xgboost_worker_matches_booster(saved_booster, booster_and_data, tmp_path):
    booster, features = booster_and_data

    async def body(runner: bentolite.Runner) -> list[Any]:
        return await asyncio.gather(*(runner.predict.async_run(features[i : i + 1]) for i in range(16)))

    results = run_in_worker("xgboost_runner", tmp_path, body)
    expected = booster.predict(xgb.DMatrix(features[:16]))
    np.testing.assert_allclose(np.concatenate(results), expected, rtol=1e-6)


def test_transformers_worker_passes_kwargs(saved_generator, generator, tmp_path):
    async def body(runner: bentolite.Runner) -> Any:
        return await runner.async_run("the quick brown", **GREEDY)

    assert run_in_worker("generator_runner", tmp_path, body) == generator("the quick brown", **GREEDY)


def test_easyocr_worker_reads_text(saved_reader, text_image, ocr_text, tmp_path):
    async def body(runner: bentolite.Runner) -> Any:
        return await runner.readtext.async_run(text_image, detail=0)

    assert run_in_worker("ocr_runner", tmp_path, body) == [ocr_text]


def test_onnx_worker_batches_concurrent_calls(saved_onnx, onnx_model, tmp_path):
    rows = np.random.default_rng(4).normal(size=(24, 4)).astype(np.float32)

    async def body(runner: bentolite.Runner) -> list[Any]:
        return await asyncio.gather(*(runner.run.async_run(rows[i : i + 1]) for i in range(24)))

    results = run_in_worker("onnx_runner", tmp_path, body)
    expected = rows @ onnx_weights(onnx_model) + onnx_bias(onnx_model)
    np.testing.assert_allclose(np.concatenate([y for y, _ in results]), expected, rtol=1e-5)
    batch_sizes = [float(batch_rows[0, 0]) for _, batch_rows in results]
    assert max(batch_sizes) > 1, f"no call was batched: {batch_sizes}"


@pytest.mark.parametrize(
    ("attr", "fixture"),
    [("lightgbm_runner", "lightgbm_and_data"), ("catboost_runner", "catboost_and_data")],
)
def test_tree_workers_match_the_model(attr, fixture, request, saved_lightgbm, saved_catboost, tmp_path):
    model, features = request.getfixturevalue(fixture)

    async def body(runner: bentolite.Runner) -> list[Any]:
        return await asyncio.gather(*(runner.predict.async_run(features[i : i + 1]) for i in range(16)))

    results = run_in_worker(attr, tmp_path, body)
    np.testing.assert_allclose(np.concatenate(results), model.predict(features[:16]), rtol=1e-6)


def test_torchscript_worker_matches_module(saved_script_mlp, mlp, tmp_path):
    x = np.random.default_rng(5).normal(size=(8, 4)).astype(np.float32)

    async def body(runner: bentolite.Runner) -> list[Any]:
        return await asyncio.gather(*(runner.async_run(x[i : i + 1]) for i in range(8)))

    results = run_in_worker("torchscript_runner", tmp_path, body)
    assert torch.allclose(torch.cat(results), mlp(torch.from_numpy(x)), atol=1e-6)

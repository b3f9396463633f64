"""Round trips with the real BentoML 1.1.11, in its own venv (tests/peers.py)."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path


from tests.peers import bentoml_python

import bentolite
from bentolite import models



BENTOML_SIDE = textwrap.dedent(
    """
    import sys
    import bentoml

    lite = bentoml.models.import_model(sys.argv[1])
    assert bentoml.models.get("lite_model:latest").tag == lite.tag
    assert lite.info.signatures["__call__"].batch_dim == (0, 0)
    assert lite.info.labels == {"team": "ml"} and lite.info.metadata == {"m": 1}
    assert lite.custom_objects == {"c": 2}
    assert bentoml.picklable_model.load_model(lite.tag)(41) == 42
    runner = lite.to_runner()
    runner.init_local(quiet=True)
    assert runner.run(1) == 2

    mine = bentoml.picklable_model.save_model(
        "bm_model", lambda x: x * 3, custom_objects={"k": "v"},
        signatures={"__call__": {"batchable": True, "batch_dim": 1}},
    )
    print(bentoml.models.export_model(mine.tag, sys.argv[2]))
    """
)


def test_archives_and_stores_move_both_ways(home: Path, tmp_path: Path):
    lite = bentolite.picklable_model.save_model(
        "lite_model", lambda x: x + 1, labels={"team": "ml"}, metadata={"m": 1},
        custom_objects={"c": 2}, signatures={"__call__": {"batchable": True}},
    )
    archive = models.export_model(lite.tag, str(tmp_path / "lite.bentomodel"))
    bentoml_home = tmp_path / "bentoml_home"
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [bentoml_python(), "-c", BENTOML_SIDE, archive, str(tmp_path / "bm.bentomodel")],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]

    # bentolite reads the store BentoML wrote...
    store = models.ModelStore(bentoml_home)
    assert sorted(m.tag.name for m in store.list()) == ["bm_model", "lite_model"]
    theirs = store.get("bm_model")
    assert bentolite.picklable_model.load_model(theirs)(2) == 6
    # ...and imports the archive BentoML exported
    imported = models.import_model(str(tmp_path / "bm.bentomodel"))
    assert imported.tag == theirs.tag
    assert imported.info.signatures["__call__"].batch_dim == (1, 1)
    assert imported.info.context.bentoml_version == "1.1.11"
    assert imported.custom_objects == {"k": "v"}
    assert imported.to_runnable()()(5) == 15


# --- the frameworks added for issue 16: onnx, lightgbm, catboost ---------------------------
# (torchscript is not tried: the peer venv has no torch, which pip must never resolve.)

BENTOML_FRAMEWORKS_SIDE = textwrap.dedent(
    """
    import sys
    import bentoml
    import catboost
    import lightgbm
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = np.load(sys.argv[1])
    out = {}
    # bentolite's models, read from the shared store: load_model and a local runner
    for name, fw, method in (("lite_onnx", "onnx", "run"), ("lite_lgbm", "lightgbm", "predict"),
                             ("lite_cat", "catboost", "predict")):
        model = getattr(bentoml, fw).get(name + ":latest")
        runner = model.to_runner()
        runner.init_local(quiet=True)
        result = getattr(runner, method).run(x)
        out[name] = result[0] if fw == "onnx" else result
    assert isinstance(bentoml.onnx.load_model("lite_onnx:latest").get_inputs()[0].name, str)

    # BentoML's own models, for bentolite to read
    weights = numpy_helper.from_array(np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "bm_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], initializer=[weights])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    bentoml.onnx.save_model("bm_onnx", proto, signatures={"run": {"batchable": True}})
    out["bm_onnx"] = bentoml.onnx.load_model("bm_onnx:latest").run(None, {"x": x})[0]

    target = x @ np.arange(1, 5, dtype=np.float32)
    booster = lightgbm.train({"objective": "regression", "num_leaves": 4, "min_data_in_leaf": 4,
                              "num_threads": 1, "verbose": -1}, lightgbm.Dataset(x, label=target), 4)
    bentoml.lightgbm.save_model("bm_lgbm", booster)
    out["bm_lgbm"] = booster.predict(x)

    classifier = catboost.CatBoostClassifier(iterations=4, depth=2, random_seed=0, thread_count=1,
                                             verbose=False, allow_writing_files=False)
    classifier.fit(x, target > target.mean())
    bentoml.catboost.save_model("bm_cat", classifier, signatures={"predict_proba": {"batchable": False}})
    out["bm_cat"] = classifier.predict_proba(x)
    np.savez(sys.argv[2], **out)
    """
)


def test_onnx_lightgbm_catboost_models_move_both_ways(home: Path, tmp_path: Path):
    import numpy as np

    from bentolite.testing import tiny_catboost_regressor, tiny_lightgbm_booster, tiny_onnx_model

    x = np.random.default_rng(11).normal(size=(32, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    lite_onnx = bentolite.onnx.save_model("lite_onnx", tiny_onnx_model(seed=1))
    booster, _ = tiny_lightgbm_booster(seed=2)
    bentolite.lightgbm.save_model("lite_lgbm", booster)
    regressor, _ = tiny_catboost_regressor(seed=3)
    bentolite.catboost.save_model("lite_cat", regressor)

    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [bentoml_python(), "-c", BENTOML_FRAMEWORKS_SIDE, str(tmp_path / "x.npy"), str(tmp_path / "bm.npz")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    theirs = np.load(tmp_path / "bm.npz")

    # BentoML 1.1.11 predicted with bentolite's models what bentolite predicts
    lite_y = bentolite.onnx.get_runnable(lite_onnx)().run(x)[0]
    np.testing.assert_allclose(theirs["lite_onnx"], lite_y, rtol=1e-6)
    np.testing.assert_allclose(theirs["lite_lgbm"], booster.predict(x), rtol=1e-9)
    np.testing.assert_allclose(theirs["lite_cat"], regressor.predict(x), rtol=1e-9)

    # bentolite reads BentoML's models and predicts the same, through their runnables
    bm_onnx = bentolite.onnx.get("bm_onnx")
    assert bm_onnx.info.context.bentoml_version == "1.1.11"
    assert bm_onnx.info.signatures["run"].batchable is True
    np.testing.assert_allclose(bentolite.onnx.get_runnable(bm_onnx)().run(x), theirs["bm_onnx"], rtol=1e-6)
    lgbm = bentolite.lightgbm.get_runnable(bentolite.lightgbm.get("bm_lgbm"))()
    np.testing.assert_allclose(lgbm.predict(x), theirs["bm_lgbm"], rtol=1e-9)
    bm_cat = bentolite.catboost.get("bm_cat")
    assert bm_cat.info.options.training_class_name == "CatBoostClassifier"
    cat = bentolite.catboost.get_runnable(bm_cat)()
    np.testing.assert_allclose(cat.predict_proba(x), theirs["bm_cat"], rtol=1e-9)

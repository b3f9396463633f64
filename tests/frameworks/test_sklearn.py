"""bentolite.sklearn: joblib round trip, BentoML's record, runners in-process and in a worker."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bentolite
from bentolite.exceptions import NotFound
from bentolite.models import ModelSignature

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from .test_runners import run_in_worker  # noqa: E402


@pytest.fixture(scope="module")
def iris() -> tuple[Any, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    return clf, x.astype(np.float64)


@pytest.fixture(scope="module")
def saved_iris(store_home: Path, iris: tuple[Any, np.ndarray]) -> bentolite.Model:
    # the BentoML quickstart's call
    return bentolite.sklearn.save_model("iris_clf", iris[0],
                                        signatures={"predict": {"batchable": True, "batch_dim": 0},
                                                    "predict_proba": {"batchable": True}})


def test_save_get_load_as_bentoml_records_it(saved_iris: bentolite.Model, iris: Any) -> None:
    clf, x = iris
    info = bentolite.sklearn.get("iris_clf:latest").info
    assert (info.module, info.api_version) == ("bentoml.sklearn", "v1")
    assert info.context.framework_name == "sklearn"
    assert set(info.context.framework_versions) == {"scikit-learn"}
    assert info.signatures["predict"] == ModelSignature(batchable=True, batch_dim=(0, 0))
    assert info.options.to_dict() == {}
    assert Path(saved_iris.path_of("saved_model.pkl")).is_file()
    loaded = bentolite.sklearn.load_model("iris_clf:latest")
    np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))
    assert bentolite.models.get("iris_clf").load_model().score(x, load_iris().target) > 0.9


def test_default_signature_and_wrong_framework(home: Path, iris: Any) -> None:
    model = bentolite.sklearn.save_model("plain", iris[0])
    assert model.info.signatures == {"predict": ModelSignature(batchable=False)}
    bentolite.picklable_model.save_model("pickled", object())
    with pytest.raises(NotFound, match="saved with module bentoml.picklable_model"):
        bentolite.sklearn.get("pickled")


def test_runner_in_process(saved_iris: bentolite.Model, iris: Any) -> None:
    clf, x = iris
    runner = saved_iris.to_runner(name="iris-local")
    assert runner.runnable_class.SUPPORTS_CPU_MULTI_THREADING is True
    runner.init_local(quiet=True)
    try:
        np.testing.assert_array_equal(runner.predict.run(x[:5]), clf.predict(x[:5]))
        proba = asyncio.run(runner.predict_proba.async_run(x[:2]))
        np.testing.assert_allclose(proba, clf.predict_proba(x[:2]))
    finally:
        runner.destroy()


def test_worker_batches_rows_and_matches_the_estimator(saved_iris: bentolite.Model, iris: Any,
                                                       tmp_path: Path) -> None:
    clf, x = iris

    async def body(runner: bentolite.Runner) -> list[Any]:
        return await asyncio.gather(*(runner.predict.async_run(x[i:i + 1]) for i in range(30)))

    # the name must match runner_targets' copy: sklearn_runner -> "sklearn-runner"
    results = run_in_worker("sklearn_runner", tmp_path, body)
    np.testing.assert_array_equal(np.concatenate(results), clf.predict(x[:30]))

"""bentolite.catboost: models load as the class they were saved from; the runnable takes Pools."""
from __future__ import annotations

import os

import catboost
import numpy as np
import pandas as pd
import pytest

import bentolite
from bentolite.exceptions import BentoMLException
from bentolite.testing import tiny_features


def test_save_get_load(saved_catboost, catboost_and_data):
    model, features = catboost_and_data
    got = bentolite.catboost.get("tiny-catboost")
    assert got.tag == saved_catboost.tag
    assert got.info.module == "bentoml.catboost" and got.info.api_version == "v1"
    assert got.info.options.training_class_name == "CatBoostRegressor"
    assert got.info.context.framework_versions == {"catboost": catboost.__version__}
    assert os.path.isfile(got.path_of("saved_model.cbm"))
    loaded = bentolite.catboost.load_model(got)
    assert type(loaded) is catboost.CatBoostRegressor
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_runnable_takes_numpy_pandas_and_pools(saved_catboost, catboost_and_data, monkeypatch):
    model, features = catboost_and_data
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runnable = bentolite.catboost.get_runnable(saved_catboost)()
    assert runnable.predict_params == {"task_type": "CPU", "thread_count": 1}
    expected = model.predict(features)
    for value in (features, pd.DataFrame(features), catboost.Pool(features)):
        out = runnable.predict(value)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, expected)


def test_classifier_round_trip_and_refusals(store_home):
    features, target = tiny_features(seed=7)
    classifier = catboost.CatBoostClassifier(
        iterations=4, depth=2, random_seed=7, thread_count=1, verbose=False, allow_writing_files=False
    ).fit(features, target > 0)
    saved = bentolite.catboost.save_model(
        "tiny-catboost-classifier", classifier, signatures={"predict": {}, "predict_proba": {}}
    )
    runnable = bentolite.catboost.get_runnable(saved)()
    np.testing.assert_array_equal(runnable.predict(features), classifier.predict(features))
    np.testing.assert_array_equal(runnable.predict_proba(features), classifier.predict_proba(features))
    with pytest.raises(TypeError, match="catboost.CatBoost"):
        bentolite.catboost.save_model("not-catboost", object())
    tampered = saved.with_options(training_class_name="Pool")
    with pytest.raises(BentoMLException, match="'Pool' is not a catboost model class"):
        bentolite.catboost.load_model(tampered)

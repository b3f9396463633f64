"""bentolite.lightgbm: Boosters and sklearn-style models, stored as BentoML 1.1 does."""
from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import bentolite
from bentolite.exceptions import InvalidArgument
from bentolite.testing import tiny_features


def test_save_get_load(saved_lightgbm, lightgbm_and_data):
    booster, features = lightgbm_and_data
    got = bentolite.lightgbm.get("tiny-lightgbm")
    assert got.tag == saved_lightgbm.tag
    assert got.info.module == "bentoml.lightgbm" and got.info.api_version == "v1"
    assert got.info.context.framework_versions == {"lightgbm": lgb.__version__}
    assert os.path.isfile(got.path_of("saved_model.ubj"))
    loaded = bentolite.lightgbm.load_model(got)
    assert isinstance(loaded, lgb.Booster)
    np.testing.assert_array_equal(loaded.predict(features), booster.predict(features))


def test_runnable_takes_numpy_and_pandas(saved_lightgbm, lightgbm_and_data, monkeypatch):
    booster, features = lightgbm_and_data
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runnable = bentolite.lightgbm.get_runnable(saved_lightgbm)()
    assert type(runnable).SUPPORTED_RESOURCES == ("cpu",)
    out = runnable.predict(features)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, booster.predict(features))
    np.testing.assert_array_equal(runnable.predict(pd.DataFrame(features)), booster.predict(features))
    np.testing.assert_array_equal(
        runnable.predict(features, raw_score=True), booster.predict(features, raw_score=True)
    )


def test_sklearn_model_is_saved_as_its_booster(store_home):
    features, target = tiny_features(seed=6)
    classifier = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, min_child_samples=4, verbose=-1, n_jobs=1)
    classifier.fit(features, target > 0)
    saved = bentolite.lightgbm.save_model("tiny-lgbm-classifier", classifier)
    assert saved.info.signatures["predict"].batchable is False  # BentoML 1.1's default
    loaded = bentolite.lightgbm.load_model(saved)
    assert isinstance(loaded, lgb.Booster)
    np.testing.assert_allclose(loaded.predict(features), classifier.predict_proba(features)[:, 1])
    with pytest.raises(TypeError, match="not fitted"):
        bentolite.lightgbm.save_model("unfitted", lgb.LGBMRegressor())
    with pytest.raises(TypeError, match="lightgbm.Booster"):
        bentolite.lightgbm.save_model("not-lightgbm", object())


def test_signature_must_name_a_booster_method(store_home, lightgbm_and_data):
    booster, _ = lightgbm_and_data
    saved = bentolite.lightgbm.save_model("tiny-lgbm-bad-sig", booster, signatures={"predict_proba": {}})
    with pytest.raises(InvalidArgument, match="predict_proba"):
        bentolite.lightgbm.get_runnable(saved)()

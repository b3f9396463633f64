"""bentolite.xgboost: Booster and sklearn-style models; runnable output equals the original's."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bentolite
from bentolite.exceptions import InvalidArgument

xgb = pytest.importorskip("xgboost")
pd = pytest.importorskip("pandas")



def test_save_list_get_load_booster(saved_booster, booster_and_data):
    booster, features = booster_and_data
    assert [m.tag for m in bentolite.models.list("tiny-booster")] == [saved_booster.tag]
    got = bentolite.xgboost.get("tiny-booster")
    assert got.info.module == "bentoml.xgboost"
    assert got.info.api_version == "v2"
    assert got.info.options.model_class == "Booster"
    assert got.info.context.framework_name == "xgboost"
    assert got.info.context.framework_versions == {"xgboost": xgb.__version__}
    assert got.info.signatures["predict"].batchable is True
    assert os.path.isfile(got.path_of("saved_model.ubj"))
    loaded = bentolite.xgboost.load_model(got)
    assert isinstance(loaded, xgb.Booster)
    expected = booster.predict(xgb.DMatrix(features))
    np.testing.assert_array_equal(loaded.predict(xgb.DMatrix(features)), expected)


def test_booster_runnable_takes_numpy_and_pandas(saved_booster, booster_and_data, monkeypatch):
    booster, features = booster_and_data
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runnable = bentolite.xgboost.get_runnable(saved_booster)()
    expected = booster.predict(xgb.DMatrix(features))
    out = runnable.predict(features)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(runnable.predict(pd.DataFrame(features)), expected)
    config = type(runnable).bentoml_runnable_methods__["predict"].config
    assert config.batchable is True and config.batch_dim == (0, 0)
    assert type(runnable).SUPPORTED_RESOURCES == ("nvidia.com/gpu", "cpu")
    assert '"nthread":"1"' in runnable.model.save_config().replace(" ", "")


def test_sklearn_model_round_trip(store_home, booster_and_data):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed: xgboost's sklearn wrappers need it")
    _, features = booster_and_data
    labels = (features[:, 0] > 0).astype(int)
    classifier = xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(features, labels)
    saved = bentolite.xgboost.save_model(
        "tiny-classifier", classifier, signatures={"predict": {"batchable": True}, "predict_proba": {"batchable": True}}
    )
    assert bentolite.xgboost.get(saved.tag).info.options.model_class == "XGBClassifier"
    loaded = bentolite.xgboost.load_model(saved.tag)
    assert isinstance(loaded, xgb.XGBClassifier)
    runnable = bentolite.xgboost.get_runnable(saved)()
    np.testing.assert_array_equal(runnable.predict(features), classifier.predict(features))
    np.testing.assert_array_equal(runnable.predict_proba(pd.DataFrame(features)), classifier.predict_proba(features))


def test_signature_must_name_a_model_method(store_home, booster_and_data):
    booster, _ = booster_and_data
    saved = bentolite.xgboost.save_model("tiny-booster-bad-sig", booster, signatures={"no_such_method": {}})
    with pytest.raises(InvalidArgument, match="no_such_method"):
        bentolite.xgboost.get_runnable(saved)()


def test_save_refuses_other_objects():
    with pytest.raises(TypeError, match="xgboost.Booster"):
        bentolite.xgboost.save_model("not-xgboost", object())


def test_bentoml_1_0_booster_format_still_loads(store_home, booster_and_data):
    """api_version v1 models hold a Booster and record no model_class."""
    from bentolite.models import ModelContext, create

    booster, features = booster_and_data
    with create(
        "bentoml-1-0-booster",
        module="bentoml.xgboost",
        api_version="v1",
        signatures={"predict": {"batchable": False}},
        context=ModelContext(framework_name="xgboost"),
    ) as model:
        booster.save_model(model.path_of("saved_model.ubj"))
    loaded = bentolite.xgboost.load_model("bentoml-1-0-booster")
    np.testing.assert_array_equal(loaded.predict(xgb.DMatrix(features)), booster.predict(xgb.DMatrix(features)))

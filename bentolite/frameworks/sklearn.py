"""``bentolite.sklearn``: scikit-learn estimators and pipelines, saved with joblib."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

from ..models import Model, create
from ..models.model import ModelContext, ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import build_runnable, get_model, package_version, require, warn_on_version_change

__all__ = ["save_model", "load_model", "get", "get_runnable", "ModelOptions", "MODULE_NAME"]

MODULE_NAME = "bentoml.sklearn"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.pkl"
EXTRA = "sklearn"
DEFAULT_SIGNATURES = {"predict": {"batchable": False}}


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a sklearn model."""
    return get_model(tag_like, MODULE_NAME)


def load_model(bento_model: TagLike | Model) -> Any:
    """The saved estimator (``joblib.load``)."""
    require("sklearn", EXTRA)
    import joblib

    model = get_model(bento_model, MODULE_NAME)
    warn_on_version_change(model, {"scikit-learn": package_version("scikit-learn")})
    return joblib.load(model.path_of(MODEL_FILENAME))


def save_model(
    name: TagLike,
    model: Any,
    *,
    signatures: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    external_modules: Sequence[ModuleType] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """Save a fitted estimator or pipeline (``joblib.dump``) to the store and return it."""
    require("sklearn", EXTRA)
    import joblib

    context = ModelContext(framework_name="sklearn",
                           framework_versions={"scikit-learn": package_version("scikit-learn")})
    with create(
        name,
        module=MODULE_NAME,
        api_version=API_VERSION,
        signatures=DEFAULT_SIGNATURES if signatures is None else signatures,
        labels=labels,
        options=ModelOptions(),
        custom_objects=custom_objects,
        external_modules=external_modules,
        metadata=metadata,
        context=context,
    ) as bento_model:
        joblib.dump(model, bento_model.path_of(MODEL_FILENAME))
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable calling the estimator's signature methods; one multi-threaded worker."""

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import joblib

        with joblib.parallel_backend("loky"):  # as BentoML 1.x: n_jobs estimators use processes
            return getattr(self.model, method)(*args, **kwargs)

    return build_runnable(
        bento_model,
        name="SklearnRunnable",
        load=lambda self: load_model(bento_model),
        call=call,
        supported_resources=("cpu",),
        multi_threading=True,
    )

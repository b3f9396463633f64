"""``bentolite.sklearn``: scikit-learn estimators and pipelines, saved with joblib."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

from ..models import Model
from ..models.model import ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable, package_version

__all__ = ["save_model", "load_model", "get", "get_runnable", "ModelOptions", "MODULE_NAME"]

MODULE_NAME = "bentoml.sklearn"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.pkl"
EXTRA = "sklearn"
DEFAULT_SIGNATURES = {"predict": {"batchable": False}}
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "sklearn", DEFAULT_SIGNATURES, library="sklearn", extra=EXTRA,
    versions=lambda: {"scikit-learn": package_version("scikit-learn")},
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a sklearn model."""
    return FRAMEWORK.get(tag_like)


def load_model(bento_model: TagLike | Model) -> Any:
    """The saved estimator (``joblib.load``)."""
    import joblib

    model = FRAMEWORK.resolve(bento_model)
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
    FRAMEWORK.lib()
    import joblib

    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
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

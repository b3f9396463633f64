"""``bentolite.catboost``: CatBoost models (``CatBoost``, ``CatBoostClassifier``, ...), ``.cbm`` files."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

import attrs

from ..exceptions import BentoMLException
from ..models import Model
from ..models.model import ModelOptions as _BaseOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable
from ._device import assigned_gpu, cpu_threads

__all__ = [
    "MODULE_NAME",
    "API_VERSION",
    "ModelOptions",
    "CatBoostOptions",
    "save_model",
    "load_model",
    "get",
    "get_runnable",
]

MODULE_NAME = "bentoml.catboost"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.cbm"
EXTRA = "catboost"
DEFAULT_SIGNATURES = {"predict": {"batchable": False}}


@attrs.define
class CatBoostOptions(_BaseOptions):
    """``training_class_name``: the catboost class the model is loaded as (``"CatBoostClassifier"``)."""

    training_class_name: str = ""


ModelOptions = CatBoostOptions
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "catboost", DEFAULT_SIGNATURES, library="catboost", extra=EXTRA,
    options=CatBoostOptions,
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a catboost model."""
    return FRAMEWORK.get(tag_like)


def load_model(bento_model: TagLike | Model) -> Any:
    """The saved model, as the catboost class it was saved from."""
    cb = FRAMEWORK.lib()
    model = FRAMEWORK.resolve(bento_model)
    class_name = model.info.options.training_class_name or "CatBoost"
    cls = getattr(cb, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, cb.CatBoost)):
        raise BentoMLException(f"Model {model.tag}: {class_name!r} is not a catboost model class")
    return cls().load_model(fname=model.path_of(MODEL_FILENAME))


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
    """Save a fitted ``catboost.CatBoost`` (or subclass) model (``saved_model.cbm``)."""
    cb = FRAMEWORK.lib()
    if not isinstance(model, cb.CatBoost):
        raise TypeError(f"Given model ({model!r}) is not a catboost.CatBoost.")
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
        options=CatBoostOptions(training_class_name=type(model).__name__),
    ) as bento_model:
        model.save_model(bento_model.path_of(MODEL_FILENAME))
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable predicting on its assigned GPU, or its share of the CPUs; inputs become Pools."""

    def load(self: Runnable) -> Any:
        if assigned_gpu():
            self.predict_params = {"task_type": "GPU"}
        else:
            self.predict_params = {"task_type": "CPU", "thread_count": cpu_threads()}
        return load_model(bento_model)

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import numpy as np

        cb = FRAMEWORK.lib()
        if args and not isinstance(args[0], cb.Pool):
            args = (cb.Pool(args[0]), *args[1:])
        return np.asarray(getattr(self.model, method)(*args, **{**self.predict_params, **kwargs}))

    return build_runnable(
        bento_model,
        name="CatBoostRunnable",
        load=load,
        call=call,
        supported_resources=("nvidia.com/gpu", "cpu"),
        multi_threading=True,
    )

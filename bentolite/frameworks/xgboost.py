"""``bentolite.xgboost``: ``xgboost.Booster`` and sklearn-style models, in xgboost's own format."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

import attrs

from ..exceptions import BentoMLException
from ..models import Model
from ..models.model import ModelOptions as _BaseOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable, package_version
from ._device import assigned_gpu, cpu_threads

__all__ = [
    "MODULE_NAME",
    "API_VERSION",
    "ModelOptions",
    "XGBoostOptions",
    "save_model",
    "load_model",
    "get",
    "get_runnable",
]

MODULE_NAME = "bentoml.xgboost"
API_VERSION = "v2"
MODEL_FILENAME = "saved_model.ubj"
EXTRA = "xgboost"
# BentoML 1.1 saved predict as non-batchable; bentolite batches it by default.
DEFAULT_SIGNATURES = {"predict": {"batchable": True}}


@attrs.define
class XGBoostOptions(_BaseOptions):
    """``model_class``: ``"Booster"`` or the sklearn wrapper's class name (``"XGBClassifier"``)."""

    model_class: str | None = None


ModelOptions = XGBoostOptions
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "xgboost", DEFAULT_SIGNATURES, library="xgboost", extra=EXTRA,
    options=XGBoostOptions,
    # The library ships as "xgboost" or "xgboost-cpu"; record it as "xgboost" either way.
    versions=lambda: {"xgboost": package_version("xgboost", "xgboost-cpu")},
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be an xgboost model."""
    return FRAMEWORK.get(tag_like)


def load_model(bento_model: TagLike | Model) -> Any:
    """The saved Booster or sklearn-style model."""
    xgb = FRAMEWORK.lib()
    model = FRAMEWORK.resolve(bento_model)
    path = model.path_of(MODEL_FILENAME)
    if model.info.api_version == "v1":
        return xgb.Booster(model_file=path)
    model_class = model.info.options.model_class
    if not model_class:
        raise BentoMLException(f"Model {model.tag} does not record its model_class")
    cls = getattr(xgb, model_class, None)
    if cls is None:
        raise BentoMLException(f"Model {model.tag}: xgboost has no class {model_class!r}")
    loaded = cls()
    loaded.load_model(path)
    return loaded


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
    """Save an ``xgboost.Booster`` or ``xgboost.XGBModel`` (``saved_model.ubj``)."""
    xgb = FRAMEWORK.lib()
    if isinstance(model, xgb.Booster):
        model_class = "Booster"
    elif isinstance(model, xgb.XGBModel):
        model_class = type(model).__name__
        if getattr(xgb, model_class, None) is not type(model):
            raise TypeError(f"{type(model).__qualname__} is not one of xgboost's model classes")
    else:
        raise TypeError(f"Given model ({model!r}) is not an xgboost.Booster or xgboost.XGBModel.")
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
        options=XGBoostOptions(model_class=model_class),
    ) as bento_model:
        model.save_model(bento_model.path_of(MODEL_FILENAME))
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable predicting with the model on its assigned GPU, or its share of the CPUs."""

    def load(self: Runnable) -> Any:
        xgb = FRAMEWORK.lib()
        model = load_model(bento_model)
        self.is_booster = isinstance(model, xgb.Booster)
        booster = model if self.is_booster else model.get_booster()
        if assigned_gpu():
            booster.set_param({"device": "cuda:0"})
        else:
            booster.set_param({"device": "cpu", "nthread": cpu_threads()})
        if not self.is_booster:
            model.set_params(n_jobs=cpu_threads(), device="cuda:0" if assigned_gpu() else "cpu")
        return model

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import numpy as np

        xgb = FRAMEWORK.lib()
        if self.is_booster and args and not isinstance(args[0], xgb.DMatrix):
            args = (xgb.DMatrix(args[0]), *args[1:])
        return np.asarray(getattr(self.model, method)(*args, **kwargs))

    return build_runnable(
        bento_model,
        name="XGBoostRunnable",
        load=load,
        call=call,
        supported_resources=("nvidia.com/gpu", "cpu"),
        multi_threading=True,
    )

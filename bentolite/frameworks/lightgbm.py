"""``bentolite.lightgbm``: ``lightgbm.Booster`` and sklearn-style models, in LightGBM's format.

As in BentoML 1.1, a sklearn-style model (``LGBMClassifier``, ...) is saved as its Booster,
so it loads as a ``lightgbm.Booster`` (whose ``predict`` of a classifier gives probabilities).
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

from ..models import Model
from ..models.model import ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable
from ._device import cpu_threads

__all__ = ["MODULE_NAME", "API_VERSION", "ModelOptions", "save_model", "load_model", "get", "get_runnable"]

MODULE_NAME = "bentoml.lightgbm"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.ubj"  # BentoML 1.1's name; the content is LightGBM's text format
EXTRA = "lightgbm"
DEFAULT_SIGNATURES = {"predict": {"batchable": False}}
FRAMEWORK = Framework(MODULE_NAME, API_VERSION, "lightgbm", DEFAULT_SIGNATURES, library="lightgbm", extra=EXTRA)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a lightgbm model."""
    return FRAMEWORK.get(tag_like)


def load_model(bento_model: TagLike | Model) -> Any:
    """The saved ``lightgbm.Booster``."""
    lgb = FRAMEWORK.lib()
    model = FRAMEWORK.resolve(bento_model)
    return lgb.Booster(model_file=model.path_of(MODEL_FILENAME))


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
    """Save a ``lightgbm.Booster``, or a fitted sklearn-style model's Booster."""
    lgb = FRAMEWORK.lib()
    if isinstance(model, lgb.LGBMModel):
        if not model.__sklearn_is_fitted__():
            raise TypeError(f"Given model ({model!r}) is not fitted.")
        model = model.booster_
    if not isinstance(model, lgb.Booster):
        raise TypeError(f"Given model ({model!r}) is not a lightgbm.Booster or a lightgbm.LGBMModel.")
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
    ) as bento_model:
        model.save_model(bento_model.path_of(MODEL_FILENAME))
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable predicting with the Booster on its share of the CPUs."""

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import numpy as np

        if method == "predict":
            kwargs = {"num_threads": cpu_threads(), **kwargs}
        return np.asarray(getattr(self.model, method)(*args, **kwargs))

    return build_runnable(
        bento_model,
        name="LightGBMRunnable",
        load=lambda self: load_model(bento_model),
        call=call,
        supported_resources=("cpu",),
        multi_threading=True,
    )

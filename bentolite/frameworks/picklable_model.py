"""``bentolite.picklable_model``: any Python object, saved with cloudpickle."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

from ..models import Model
from ..models.model import PartialKwargsModelOptions as ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable, package_version

__all__ = ["save_model", "load_model", "get", "get_runnable", "ModelOptions", "MODULE_NAME"]

MODULE_NAME = "bentoml.picklable_model"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.pkl"
DEFAULT_SIGNATURES = {"__call__": {"batchable": False}}
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "cloudpickle", DEFAULT_SIGNATURES, options=ModelOptions,
    versions=lambda: {"cloudpickle": package_version("cloudpickle")},
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a picklable_model."""
    return FRAMEWORK.get(tag_like)


def load_model(bento_model: TagLike | Model) -> Any:
    """Unpickle the saved object."""
    import cloudpickle

    model = FRAMEWORK.resolve(bento_model)
    with open(model.path_of(MODEL_FILENAME), "rb") as fh:
        return cloudpickle.load(fh)


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
    """Save ``model`` (any cloudpickle-able object) to the store and return it."""
    import cloudpickle

    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
    ) as bento_model:
        with open(bento_model.path_of(MODEL_FILENAME), "wb") as fh:
            cloudpickle.dump(model, fh)
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable running the pickled object's methods; one worker per CPU."""
    return build_runnable(
        bento_model,
        name="PicklableRunnable",
        load=lambda self: load_model(bento_model),
        supported_resources=("cpu",),
        multi_threading=False,
    )

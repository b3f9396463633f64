"""``bentolite.picklable_model``: any Python object, saved with cloudpickle."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

from ..models import Model, create
from ..models.model import ModelContext
from ..models.model import PartialKwargsModelOptions as ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import build_runnable, get_model, package_version, warn_on_version_change

__all__ = ["save_model", "load_model", "get", "get_runnable", "ModelOptions", "MODULE_NAME"]

MODULE_NAME = "bentoml.picklable_model"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.pkl"
DEFAULT_SIGNATURES = {"__call__": {"batchable": False}}


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a picklable_model."""
    return get_model(tag_like, MODULE_NAME)


def load_model(bento_model: TagLike | Model) -> Any:
    """Unpickle the saved object."""
    import cloudpickle

    model = get_model(bento_model, MODULE_NAME)
    warn_on_version_change(model, {"cloudpickle": package_version("cloudpickle")})
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

    context = ModelContext(
        framework_name="cloudpickle",
        framework_versions={"cloudpickle": package_version("cloudpickle")},
    )
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

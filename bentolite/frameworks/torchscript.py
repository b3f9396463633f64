"""``bentolite.torchscript``: ``torch.jit`` script/traced modules, saved with ``torch.jit.save``."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping, Sequence

from ..models import Model
from ..models.model import PartialKwargsModelOptions as ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework
from .pytorch import torch_runnable

__all__ = ["MODULE_NAME", "API_VERSION", "ModelOptions", "save_model", "load_model", "get", "get_runnable"]

MODULE_NAME = "bentoml.torchscript"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.pt"
EXTRA = "torchscript"
DEFAULT_SIGNATURES = {"__call__": {"batchable": False}}
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "torchscript", DEFAULT_SIGNATURES, library="torch", extra=EXTRA,
    options=ModelOptions,
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a torchscript model."""
    return FRAMEWORK.get(tag_like)


def load_model(
    bento_model: TagLike | Model,
    device_id: str | None = "cpu",
    *,
    _extra_files: dict[str, Any] | None = None,
) -> Any:
    """Load the saved ScriptModule onto ``device_id``; ``_extra_files`` (names -> "") is
    filled in place with the extra files saved beside it."""
    torch = FRAMEWORK.lib()
    model = FRAMEWORK.resolve(bento_model)
    return torch.jit.load(model.path_of(MODEL_FILENAME), map_location=device_id, _extra_files=_extra_files)


def save_model(
    name: TagLike,
    model: Any,
    *,
    signatures: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    external_modules: Sequence[ModuleType] | None = None,
    metadata: Mapping[str, Any] | None = None,
    _extra_files: dict[str, Any] | None = None,
) -> Model:
    """Save a ``torch.jit.ScriptModule`` (``torch.jit.script``/``trace``) with ``torch.jit.save``;
    ``_extra_files`` (name -> bytes or str) are stored inside it and listed in the metadata."""
    torch = FRAMEWORK.lib()
    if not isinstance(model, torch.jit.ScriptModule):
        raise TypeError(f"Given model ({model!r}) is not a torch.jit.ScriptModule.")
    if _extra_files is not None:
        metadata = {**(metadata or {}), "_extra_files": list(_extra_files)}
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
    ) as bento_model:
        torch.jit.save(model, bento_model.path_of(MODEL_FILENAME), _extra_files=_extra_files)
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable running the module under ``torch.inference_mode()`` on its assigned device."""
    return torch_runnable(bento_model, load_model, "TorchScriptRunnable")

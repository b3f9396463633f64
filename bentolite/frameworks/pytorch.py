"""``bentolite.pytorch``: whole ``torch.nn.Module`` objects, saved with ``torch.save``."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from ..models import Model
from ..models.model import PartialKwargsModelOptions as ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable
from ._device import torch_device

__all__ = [
    "MODULE_NAME",
    "API_VERSION",
    "ModelOptions",
    "save_model",
    "load_model",
    "get",
    "get_runnable",
    "to_tensor",
    "torch_runnable",
]

MODULE_NAME = "bentoml.pytorch"
API_VERSION = "v1"
MODEL_FILENAME = "saved_model.pt"
EXTRA = "pytorch"
DEFAULT_SIGNATURES = {"__call__": {"batchable": False}}
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "torch", DEFAULT_SIGNATURES, library="torch", extra=EXTRA, options=ModelOptions
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a pytorch model."""
    return FRAMEWORK.get(tag_like)


def load_model(bento_model: TagLike | Model, device_id: str = "cpu") -> Any:
    """Load the saved module onto ``device_id`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``...)."""
    torch = FRAMEWORK.lib()
    model = FRAMEWORK.resolve(bento_model)
    # cloudpickle writes standard pickles, so torch's default unpickler reads them back.
    # torch>=2.6 defaults to weights_only=True, which cannot restore a whole module.
    return torch.load(model.path_of(MODEL_FILENAME), map_location=device_id, weights_only=False)


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
    """Save a ``torch.nn.Module`` (the whole module, pickled with cloudpickle)."""
    torch = FRAMEWORK.lib()
    import cloudpickle

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"Given model ({model!r}) is not a torch.nn.Module.")
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata,
    ) as bento_model:
        torch.save(model, bento_model.path_of(MODEL_FILENAME), pickle_module=cloudpickle)
    return bento_model


def to_tensor(value: Any, device: str) -> Any:
    """A runner argument as a tensor on ``device``; values that are not array-like pass through.

    numpy arrays and pandas DataFrames keep their dtype, except float64, which becomes
    float32 (torch's default, what module weights use). BentoML 1.1 cast everything to float32.
    """
    torch = FRAMEWORK.lib()
    import numpy as np

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if type(value).__module__.startswith("pandas") and hasattr(value, "to_numpy"):
        value = value.to_numpy()
    if isinstance(value, np.ndarray):
        if value.dtype in (np.float64, object):  # object: a DataFrame of mixed numbers
            value = value.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(value)).to(device)
    return value


def torch_runnable(bento_model: Model, load_model: Callable[..., Any], name: str) -> type[Runnable]:
    """A Runnable running a torch module (``load_model(bento_model, device_id=...)``) under
    ``torch.inference_mode()`` on its assigned device; array arguments become tensors there."""

    def load(self: Runnable) -> Any:
        self.device = torch_device()
        module = load_model(bento_model, device_id=self.device)
        module.train(False)
        return module

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        torch = FRAMEWORK.lib()
        partial = bento_model.info.options.partial_kwargs.get(method, {})
        with torch.inference_mode():
            tensors = [to_tensor(arg, self.device) for arg in args]
            named = {key: to_tensor(value, self.device) for key, value in kwargs.items()}
            return getattr(self.model, method)(*tensors, **{**partial, **named})

    return build_runnable(
        bento_model,
        name=name,
        load=load,
        call=call,
        supported_resources=("nvidia.com/gpu", "cpu"),
        multi_threading=True,
    )


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable running the module under ``torch.inference_mode()`` on its assigned device."""
    return torch_runnable(bento_model, load_model, "PytorchModelRunnable")

"""Shared pieces of the framework modules (``bentolite.<framework>``).

Each framework module defines ``MODULE_NAME``, ``API_VERSION``, ``save_model``,
``load_model``, ``get`` and ``get_runnable``. Framework libraries are imported inside
functions through :func:`require`, so ``import bentolite`` stays light.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
from types import ModuleType
from typing import Any, Callable, Mapping

from ..exceptions import MissingDependencyException, NotFound
from ..models import Model
from ..models import get as _store_get
from ..models.model import ModelSignature
from ..runner.runnable import Runnable
from ..tag import TagLike

__all__ = [
    "require",
    "package_version",
    "get_model",
    "resolve_model",
    "build_runnable",
    "warn_on_version_change",
]

logger = logging.getLogger(__name__)

FRAMEWORKS = ("picklable_model", "pytorch", "transformers", "xgboost", "easyocr", "sklearn")


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyException(
            f"{module!r} is required for this framework ({e}); "
            f"install it with: pip install 'bentolite[{extra}]'"
        ) from None


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def get_model(tag: TagLike | Model, module_name: str) -> Model:
    """A model from the store, refusing one saved by another framework."""
    model = tag if isinstance(tag, Model) else _store_get(tag)
    short = module_name.rsplit(".", 1)[-1]
    if model.info.module.rsplit(".", 1)[-1] != short:
        raise NotFound(
            f"Model {model.tag} was saved with module {model.info.module}, "
            f"not loading with {module_name}"
        )
    return model


resolve_model = get_model


def warn_on_version_change(model: Model, dists: Mapping[str, str]) -> None:
    """Warn when the library now installed differs from the one the model was saved with."""
    saved = model.info.context.framework_versions
    for dist, now in dists.items():
        before = saved.get(dist)
        if before and before != now:
            logger.warning(
                "Model %s was saved with %s %s; loading with %s %s", model.tag, dist, before, dist, now
            )


def build_runnable(
    model: Model,
    *,
    name: str,
    load: Callable[[Runnable], Any],
    call: Callable[[Runnable, str, tuple[Any, ...], dict[str, Any]], Any] | None = None,
    supported_resources: tuple[str, ...] = ("cpu",),
    multi_threading: bool = True,
) -> type[Runnable]:
    """A Runnable class exposing each of ``model``'s signatures.

    ``load(self)`` runs in ``__init__`` and returns the loaded object (kept as ``self.model``);
    ``call(self, method, args, kwargs)`` runs one method (default: ``getattr(model, method)``
    with the model's ``partial_kwargs`` merged under the call's kwargs).
    """

    def __init__(self: Runnable) -> None:
        self.model = load(self)

    def default_call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        partial = getattr(model.info.options, "partial_kwargs", {}).get(method, {})
        return getattr(self.model, method)(*args, **{**partial, **kwargs})

    runner_call = call or default_call
    cls = type(
        name,
        (Runnable,),
        {
            "SUPPORTED_RESOURCES": supported_resources,
            "SUPPORTS_CPU_MULTI_THREADING": multi_threading,
            "__init__": __init__,
            "bento_model": model,
        },
    )
    for method_name, sig in model.info.signatures.items():
        cls.add_method(
            _method_caller(runner_call, method_name),
            method_name,
            batchable=sig.batchable,
            batch_dim=sig.batch_dim,
            input_spec=sig.input_spec,
            output_spec=sig.output_spec,
        )
    return cls


def _method_caller(call: Callable[..., Any], method_name: str) -> Callable[..., Any]:
    def run(self: Runnable, *args: Any, **kwargs: Any) -> Any:
        return call(self, method_name, args, kwargs)

    run.__name__ = method_name
    return run


def default_signatures(names: Mapping[str, bool]) -> dict[str, ModelSignature]:
    return {name: ModelSignature(batchable=batchable) for name, batchable in names.items()}

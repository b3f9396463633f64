"""bentolite: BentoML's API, served fast. Use as ``import bentolite as bentoml``.

Both styles run on one engine: the runner era (v1: ``Service``, ``Runner``, ``Runnable``,
``bentolite.io``) and the new style (BentoML 1.2+: ``@service`` classes, ``@api`` methods,
``depends``).

Framework modules (``bentolite.transformers``, ``bentolite.pytorch``, ...) and the serving
stack load lazily on first attribute access, so importing bentolite never imports torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from . import exceptions
from .models import Model
from .runner.runnable import Runnable
from .tag import Tag

if TYPE_CHECKING:  # pragma: no cover
    from . import client, io, metrics, models
    from .runner.runner import Runner
    from .runner.strategy import Resource, Strategy
    from .services.context import Context, Cookie
    from .services.loader import load
    from .services.service import Service

_FRAMEWORKS = (
    "picklable_model", "pytorch", "transformers", "xgboost", "easyocr", "sklearn",
    "onnx", "lightgbm", "torchscript", "catboost",
)

#: public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "Runner": (".runner.runner", "Runner"),
    "Strategy": (".runner.strategy", "Strategy"),
    "Resource": (".runner.strategy", "Resource"),
    "Service": (".services.service", "Service"),
    "Context": (".services.context", "Context"),
    "Cookie": (".services.context", "Cookie"),
    "load": (".services.loader", "load"),
    "load_config": (".config", "load_config"),
    "models": (".models", None),
    "io": (".io", None),
    "client": (".client", None),
    "metrics": (".metrics", None),
    "monitor": (".monitoring", "monitor"),
    "monitoring": (".monitoring", None),
    "server": (".server", None),
    "HTTPServer": (".server.launcher", "HTTPServer"),
    "serve": (".server.launcher", "serve"),
    "types": (".types", None),
    # the new-style SDK (BentoML 1.2+)
    "service": (".services.definition", "service"),
    "api": (".services.definition", "api"),
    "on_startup": (".services.definition", "on_startup"),
    "on_shutdown": (".services.definition", "on_shutdown"),
    "on_deployment": (".services.definition", "on_deployment"),
    "depends": (".services.dependency", "depends"),
    "importing": (".services.loader", "importing"),
    "runner_service": (".services.definition", "runner_service"),
    "legacy": (".legacy", None),
    "validators": (".validators", None),
    "SyncHTTPClient": (".client", "SyncHTTPClient"),
    "AsyncHTTPClient": (".client", "AsyncHTTPClient"),
    "ray": (".ray", None),
    **{name: (f".frameworks.{name}", None) for name in _FRAMEWORKS},
}

__all__ = ["__version__", "Model", "Runnable", "Tag", "exceptions", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'bentolite' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

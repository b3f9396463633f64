"""bentolite: BentoML's runner-era (v1) API, served fast. Use as ``import bentolite as bentoml``.

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
    from .service.context import Context, Cookie
    from .service.loader import load
    from .service.service import Service

_FRAMEWORKS = ("picklable_model", "pytorch", "transformers", "xgboost", "easyocr", "sklearn")

#: public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "Runner": (".runner.runner", "Runner"),
    "Strategy": (".runner.strategy", "Strategy"),
    "Resource": (".runner.strategy", "Resource"),
    "Service": (".service.service", "Service"),
    "Context": (".service.context", "Context"),
    "Cookie": (".service.context", "Cookie"),
    "load": (".service.loader", "load"),
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

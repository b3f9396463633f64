"""``bentolite.legacy``: the runner-era API under the name BentoML 1.4 gives it
(``bentoml.legacy.Service``, ``Runner``, ``Runnable``, ``io``)."""
from __future__ import annotations

from . import io
from .runner.runnable import Runnable
from .runner.runner import Runner
from .services.service import Service

__all__ = ["Runnable", "Runner", "Service", "io"]

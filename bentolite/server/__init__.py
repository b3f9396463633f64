"""HTTP serving: the API server app, its middlewares, OpenAPI, metrics and worker entry point.

- ``app.build_app(service, config=..., runner_init=...)`` -> aiohttp Application
- ``app.serve_app(app, host=, port= | sock=, listen_when_ready=)`` serves it until SIGTERM
- ``python -m bentolite.server.api_worker --target MOD:ATTR --fd N --runner-map JSON`` is one
  API worker process of the production supervisor.
- ``HTTPServer`` / ``serve`` (``launcher``): v1's Python API to run a server from a script.
"""
from __future__ import annotations

from typing import Any

__all__ = ["HTTPServer", "serve"]


def __getattr__(name: str) -> Any:  # bentoml.server.HTTPServer, without importing aiohttp here
    if name in __all__:
        from . import launcher

        return getattr(launcher, name)
    raise AttributeError(f"module 'bentolite.server' has no attribute {name!r}")

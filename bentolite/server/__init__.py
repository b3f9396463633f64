"""HTTP serving: the API server app, its middlewares, OpenAPI, metrics and worker entry point.

- ``app.build_app(service, config=..., runner_init=...)`` -> aiohttp Application
- ``app.serve_app(app, host=, port= | sock=, listen_when_ready=)`` serves it until SIGTERM
- ``python -m bentolite.server.api_worker --target MOD:ATTR --fd N --runner-map JSON`` is one
  API worker process of the production supervisor.
"""

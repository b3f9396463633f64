"""``bentolite serve``: serve a Service over HTTP."""
from __future__ import annotations

import logging
import os
from typing import Any

import click

from ..exceptions import CLIException

__all__ = ["register", "serve"]

logger = logging.getLogger("bentolite.cli")


@click.command()
@click.argument("target", default=".", required=False)
@click.option("--development", is_flag=True, help="One process; runners run in-process.")
@click.option("--production", is_flag=True, help="Supervisor with API and runner worker processes (default).")
@click.option("--host", default=None, envvar="BENTOML_HOST", help="Bind address [default: 127.0.0.1].")
@click.option("-p", "--port", type=int, default=None, envvar="BENTOML_PORT", help="[default: 3000]")
@click.option("--api-workers", type=int, default=None, envvar="BENTOML_API_WORKERS")
@click.option("--timeout", type=float, default=None, envvar="BENTOML_TIMEOUT",
              help="Per-request timeout in seconds (overrides api_server.traffic.timeout).")
@click.option("--reload", is_flag=True, help="Restart when source files change (not supported yet).")
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--working-dir", default=".", type=click.Path(exists=True, file_okay=False))
def serve(target: str, development: bool, production: bool, host: str | None, port: int | None,
          api_workers: int | None, timeout: float | None, reload: bool, config_path: str | None,
          working_dir: str) -> None:
    """Serve TARGET (module:attr, module, or file.py[:attr]) over HTTP."""
    from ..config import load_config
    from ..server.api_worker import run_server
    from ..server.app import build_app, serve_app
    from ..service.loader import load

    if development and production:
        raise CLIException("choose one of --development and --production")
    if reload:
        raise CLIException("--reload is not supported yet; restart the server after changes")
    if target == ".":
        raise CLIException("give the service as MODULE[:ATTR] or FILE.py[:ATTR]")
    config = load_config(config_path) if config_path else load_config()
    if timeout is not None:
        config.api_server.traffic.timeout = timeout
    host = host or "127.0.0.1"
    port = config.api_server.http.port if port is None else port
    if not development:
        logger.warning("production mode (the supervisor) is not built yet: serving in "
                       "development mode (one process, runners in-process)")
    if api_workers not in (None, 1):
        logger.warning("--api-workers=%s ignored in development mode", api_workers)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: the default registry
    service = load(target, working_dir)
    app = build_app(service, config=config)
    run_server(serve_app(app, host=host, port=port, config=config))


def register(cli: Any) -> None:
    cli.add_command(serve)

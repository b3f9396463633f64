"""``bentolite serve``: serve a Service over HTTP."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
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
@click.option("--reload", is_flag=True, help="Restart when a .py file under --working-dir changes.")
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
    if target == ".":
        raise CLIException("give the service as MODULE[:ATTR] or FILE.py[:ATTR]")
    if reload:
        args = [target, "--development", "--working-dir", working_dir]
        for flag, value in (("--host", host), ("--port", port), ("--timeout", timeout),
                            ("--config", config_path)):
            if value is not None:
                args += [flag, str(value)]
        serve_with_reload(args, Path(working_dir))
        return
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


_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}


def _source_mtimes(root: Path) -> dict[Path, float]:
    mtimes: dict[Path, float] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS]
        for name in filenames:
            if name.endswith(".py"):
                path = Path(dirpath, name)
                try:
                    mtimes[path] = path.stat().st_mtime
                except OSError:  # removed while walking
                    continue
    return mtimes


def serve_with_reload(serve_args: list[str], root: Path, poll_s: float = 0.5) -> None:
    """Run ``serve --development`` in a child process; restart it when a .py file changes."""
    command = [sys.executable, "-c", "from bentolite.cli import main; main()", "serve", *serve_args]
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    child: subprocess.Popen[bytes] | None = None
    try:
        while not stop.is_set():
            seen = _source_mtimes(root)
            child = subprocess.Popen(command)
            while not stop.wait(poll_s):
                if _source_mtimes(root) != seen:
                    logger.info("source changed under %s: restarting the server", root)
                    break
            _stop_child(child)
    finally:
        if child is not None:
            _stop_child(child)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_child(child: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def register(cli: Any) -> None:
    cli.add_command(serve)

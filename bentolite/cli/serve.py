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

__all__ = ["register", "serve", "start_http_server", "start_runner_server"]

logger = logging.getLogger("bentolite.cli")


def _load_config(config_path: str | None, timeout: float | None) -> Any:
    from ..config import load_config

    config = load_config(config_path) if config_path else load_config()
    if timeout is not None:
        config.api_server.traffic.timeout = timeout
    return config


def _default_api_workers(config: Any) -> int | None:
    """``api_server.workers``, else the supervisor decides: a new-style root service's
    ``workers``, else 1 (one uvloop API worker rarely limits a batched model, and on small
    machines more of them compete with the runner workers for cores)."""
    return config.api_server.workers


_common_options = [
    click.option("--host", default=None, envvar="BENTOML_HOST",
                 help="Bind address [default: api_server.http.host; "
                      "127.0.0.1 with --development]."),
    click.option("-p", "--port", type=int, default=None, envvar="BENTOML_PORT",
                 help="[default: api_server.http.port]"),
    click.option("--timeout", type=float, default=None, envvar="BENTOML_TIMEOUT",
                 help="Per-request timeout in seconds (overrides api_server.traffic.timeout)."),
    click.option("--config", "config_path", default=None,
                 type=click.Path(exists=True, dir_okay=False),
                 help="bentoml/bentolite configuration file (YAML)."),
    click.option("--working-dir", default=".", type=click.Path(exists=True, file_okay=False),
                 help="Directory the service is imported from."),
]

_production_options = [
    click.option("--api-workers", type=click.IntRange(min=1), default=None,
                 envvar="BENTOML_API_WORKERS",
                 help="API worker processes [default: api_server.workers, else 1]."),
    click.option("--backlog", type=click.IntRange(min=1), default=None,
                 help="Listen backlog [default: api_server.backlog]."),
    click.option("--graceful-shutdown-timeout", type=click.FloatRange(min=0), default=30.0,
                 show_default=True,
                 help="Seconds in-flight requests get to finish after SIGTERM/SIGINT."),
]


def _options(options: list[Any]) -> Any:
    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _run_supervisor(target: str, config: Any, *, host: str | None, port: int | None,
                    api_workers: int | None, backlog: int | None, graceful_shutdown_timeout: float,
                    working_dir: str, remote_runners: dict[str, list[str]] | None = None) -> None:
    from ..server.supervisor import serve_production

    http = config.api_server.http
    code = serve_production(
        target, working_dir=working_dir, host=host or http.host,
        port=http.port if port is None else port,
        backlog=config.api_server.backlog if backlog is None else backlog,
        api_workers=api_workers or _default_api_workers(config),
        graceful_shutdown_s=graceful_shutdown_timeout, remote_runners=remote_runners)
    sys.exit(code)


@click.command()
@click.argument("target", default=".", required=False)
@click.option("--development", is_flag=True, help="One process; runners run in-process.")
@click.option("--production", is_flag=True,
              help="Supervisor with API and runner worker processes (the default).")
@_options(_common_options)
@_options(_production_options)
@click.option("--reload", is_flag=True,
              help="Development mode, restarted when a .py file under --working-dir changes.")
def serve(target: str, development: bool, production: bool, host: str | None, port: int | None,
          api_workers: int | None, backlog: int | None, graceful_shutdown_timeout: float,
          timeout: float | None, reload: bool, config_path: str | None, working_dir: str) -> None:
    """Serve TARGET over HTTP: module[:attr], file.py[:attr], a bento tag or directory, or
    a directory with a bentofile.yaml (the default, ".")."""
    from ..bentos.target import resolve_serve_target

    if development and production:
        raise CLIException("choose one of --development and --production")
    target, working_dir = resolve_serve_target(target, working_dir)
    if reload:
        args = [target, "--development", "--working-dir", working_dir]
        for flag, value in (("--host", host), ("--port", port), ("--timeout", timeout),
                            ("--config", config_path)):
            if value is not None:
                args += [flag, str(value)]
        serve_with_reload(args, Path(working_dir))
        return
    config = _load_config(config_path, timeout)
    if not development:
        _run_supervisor(target, config, host=host, port=port, api_workers=api_workers,
                        backlog=backlog, graceful_shutdown_timeout=graceful_shutdown_timeout,
                        working_dir=working_dir)
        return
    from ..allocator import tune_allocator
    from ..server.api_worker import run_server
    from ..server.app import build_app, serve_app
    from ..services.loader import load

    tune_allocator()  # this process serves the requests (and runs the runners)
    if api_workers not in (None, 1):
        logger.warning("--api-workers=%s ignored in development mode", api_workers)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: the default registry
    service = load(target, working_dir)
    app = build_app(service, config=config)
    run_server(serve_app(app, host=host or "127.0.0.1", port=config.api_server.http.port
                         if port is None else port, config=config,
                         shutdown_timeout_s=graceful_shutdown_timeout))


def _parse_remote_runners(values: tuple[str, ...]) -> dict[str, list[str]]:
    remote: dict[str, list[str]] = {}
    for value in values:
        name, sep, address = value.partition("=")
        if not sep or not name or not address.startswith(("tcp://", "http://")):
            raise CLIException(
                f"--remote-runner {value!r}: expected NAME=tcp://HOST:PORT")
        remote.setdefault(name.strip(), []).append(address.strip())
    return remote


@click.command("start-http-server")
@click.argument("target")
@click.option("--remote-runner", "remote_runner", multiple=True,
              envvar="BENTOML_SERVE_REMOTE_RUNNER",
              help="NAME=tcp://HOST:PORT of a runner server (repeatable; every runner "
                   "needs one, several for one runner share its calls).")
@_options(_common_options)
@_options(_production_options)
def start_http_server(target: str, remote_runner: tuple[str, ...], host: str | None,
                      port: int | None, api_workers: int | None, backlog: int | None,
                      graceful_shutdown_timeout: float, timeout: float | None,
                      config_path: str | None, working_dir: str) -> None:
    """Serve TARGET's APIs, calling its runners on runner servers (split deployment).
    TARGET as for ``serve``: module[:attr], file.py[:attr], a bento tag or directory."""
    from ..bentos.target import resolve_serve_target
    from ..services.loader import load

    remote = _parse_remote_runners(remote_runner)
    config = _load_config(config_path, timeout)
    target, working_dir = resolve_serve_target(target, working_dir)
    service = load(target, working_dir)
    names = {r.name for r in service.runners}
    unknown = sorted(set(remote) - names)
    if unknown:
        raise CLIException(f"--remote-runner names {unknown}, which {target} does not have "
                           f"(its runners: {sorted(names)})")
    missing = sorted(r.name for r in service.runners if not r.embedded and r.name not in remote)
    if missing:
        raise CLIException(
            f"runners {missing} of {target} have no --remote-runner NAME=tcp://HOST:PORT "
            "(start them with `bentolite start-runner-server`)")
    _run_supervisor(target, config, host=host, port=port, api_workers=api_workers,
                    backlog=backlog, graceful_shutdown_timeout=graceful_shutdown_timeout,
                    working_dir=working_dir, remote_runners=remote)


@click.command("start-runner-server")
@click.argument("target")
@click.option("--runner-name", required=True, help="The runner of TARGET to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("-p", "--port", type=int, default=None, help="[default: a free port, logged]")
@click.option("--config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--working-dir", default=".", type=click.Path(exists=True, file_okay=False))
def start_runner_server(target: str, runner_name: str, host: str, port: int | None,
                        config_path: str | None, working_dir: str) -> None:
    """Serve one runner of TARGET over HTTP on TCP (needs runners.auth_token). TARGET as for
    ``serve``: module[:attr], file.py[:attr], a bento tag or directory (its models/ too)."""
    from ..bentos.target import resolve_serve_target
    from ..runner.worker import load_runner
    from ..services.loader import load

    config = _load_config(config_path, None)
    target, working_dir = resolve_serve_target(target, working_dir)
    if not config.runner(runner_name).auth_token:
        raise CLIException(
            "a runner server on TCP needs a shared secret: set runners.auth_token (or "
            f"runners.{runner_name}.auth_token) for the runner server and its callers")
    load(target, working_dir)  # puts working_dir on sys.path, checks the target
    runner = load_runner(target, runner_name, working_dir)
    if port is None:
        from ..server.supervisor import bind_socket

        with bind_socket(host, 0, 1) as probe:
            port = probe.getsockname()[1]
    env = dict(os.environ)
    env.pop("BENTOLITE_PARENT_PID", None)  # this worker has no supervisor to watch
    env.update(runner.scheduled_worker_env_map.get(0, {}))
    if config_path:
        env["BENTOLITE_CONFIG"] = os.path.abspath(config_path)
    package_root = str(Path(__file__).resolve().parents[2])  # import bentolite from here
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)])
    logger.info("runner %s: serving on tcp://%s:%d (one worker; run more servers to scale)",
                runner_name, host, port)
    argv = [sys.executable, "-m", "bentolite.runner.worker", "--target", target,
            "--runner-name", runner_name, "--host", host, "--port", str(port),
            "--working-dir", os.path.abspath(working_dir)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)  # the worker replaces this process (same PID)


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
    cli.add_command(start_http_server)
    cli.add_command(start_runner_server)

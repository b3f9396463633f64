"""API worker process entry point, started by the production supervisor.

``python -m bentolite.server.api_worker --target MOD:ATTR --fd N --runner-map JSON`` loads the
service, connects each runner to its runner-worker sockets with ``runner.init_client(...)``
and serves the API app on the inherited listening socket ``N``. It exits
``EXIT_STARTUP_FAILED`` when start-up fails (the supervisor then gives up rather than
restarting it), and stops by itself if its parent (the supervisor) goes away.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from ..allocator import tune_allocator
from ..logs import configure_logging
from .app import API_THREAD_PREFIX

__all__ = ["EXIT_STARTUP_FAILED", "main", "run_worker", "run_server", "remote_runner_init"]

logger = logging.getLogger("bentolite.server")

#: exit status of a worker whose start-up failed (service import, hooks, runner connection)
EXIT_STARTUP_FAILED = 1


def remote_runner_init(runner_map: dict[str, Any]) -> Any:
    """A ``RunnerInit`` connecting each runner to the worker addresses named in ``runner_map``.

    It does not wait for the workers: connections open on demand, and ``/readyz`` probes the
    workers (``api_server.runner_probe``), so every API worker sharing the socket reports and
    serves the same runner state at the same moment (no window where one worker still says
    "starting" after another said ready). Calls before a worker is up get a 503.
    """

    async def connect(runner: Any) -> None:
        addresses = runner_map[runner.name]
        await _maybe(runner.init_client([addresses] if isinstance(addresses, str) else addresses))

    def init(runner: Any) -> Any:
        # Called in the API thread pool. The remote handle must be created on the event
        # loop (it binds to it), so hand back a coroutine for the loop to await.
        if runner.name not in runner_map:  # not started by the supervisor: run it here
            runner.init_local(quiet=True)
            return None
        return connect(runner)

    return init


async def _maybe(value: Any) -> Any:
    import inspect

    return await value if inspect.isawaitable(value) else value


def run_worker(target: str, *, fd: int | None, host: str | None, port: int | None,
               runner_map: dict[str, Any], working_dir: str | None = None,
               config_path: str | None = None, development: bool = False,
               listen_when_ready: bool = False, shutdown_timeout_s: float = 30.0) -> None:
    """Load ``target`` and serve it until SIGTERM; runners local in development mode.

    The shared socket is served at once (``/readyz`` 503 names the runners still loading),
    or with ``listen_when_ready`` only once every runner is initialised.
    """
    from ..config import load_config
    from ..services.loader import load
    from .app import build_app, init_runners_locally, serve_app

    config = load_config(config_path) if config_path else load_config()
    service = load(target, working_dir)
    runner_init = (init_runners_locally if development
                   else remote_runner_init(runner_map))
    app = build_app(service, config=config, runner_init=runner_init)
    sock = socket.socket(fileno=fd) if fd is not None else None
    run_server(serve_app(app, host=host, port=port, sock=sock, config=config,
                         listen_when_ready=listen_when_ready,
                         shutdown_timeout_s=shutdown_timeout_s), grace_s=2.0)


def _stop_when_orphaned() -> None:
    """SIGTERM ourselves (a graceful stop) if the supervisor that started us goes away."""
    from ..runner.process import PARENT_PID_ENV

    # the supervisor names itself: it may have died before this process could ask getppid()
    parent = int(os.environ.get(PARENT_PID_ENV) or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        logger.warning("the supervisor (pid %d) exited; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_server(coro: Any, *, grace_s: float = 2.0) -> None:
    """Run a serving coroutine on uvloop; never let a stuck sync API call block the exit."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the lock file
        asyncio.run(coro)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    # Threads cannot be cancelled: a sync API function still running (e.g. after a 504)
    # would keep the interpreter alive at exit, so wait a little, then leave without it.
    stuck = [t for t in threading.enumerate() if t.name.startswith(API_THREAD_PREFIX)]
    deadline = time.monotonic() + grace_s
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in stuck if t.is_alive()]
    if stuck:
        logger.warning("exiting with %d API call(s) still running in threads", len(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bentolite.server.api_worker")
    parser.add_argument("--target", required=True, help="module:attr or file.py[:attr]")
    parser.add_argument("--working-dir", default=None)
    parser.add_argument("--fd", type=int, default=None, help="inherited listening socket")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--runner-map", default="{}",
                        help="JSON {runner_name: [socket paths]} from the supervisor")
    parser.add_argument("--config", default=None)
    parser.add_argument("--worker-id", type=int, default=0)
    parser.add_argument("--prometheus-dir", default=None)
    parser.add_argument("--development", action="store_true")
    parser.add_argument("--listen-when-ready", action="store_true",
                        help="serve the socket only once every runner is initialised")
    parser.add_argument("--graceful-shutdown-timeout", type=float, default=30.0,
                        help="seconds in-flight requests get to finish after SIGTERM")
    parser.add_argument("--watch-parent", action="store_true",
                        help="stop when the parent process exits")
    args = parser.parse_args(argv)
    tune_allocator()
    if args.prometheus_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = args.prometheus_dir
    from ..monitoring import WORKER_ID_ENV

    os.environ[WORKER_ID_ENV] = str(args.worker_id)  # names this worker's monitoring files
    configure_logging(f"%(asctime)s %(levelname)s [api:{args.worker_id}] %(name)s: %(message)s")
    if args.fd is None and args.port is None:
        parser.error("give --fd (inherited socket) or --port")
    if args.watch_parent:
        _stop_when_orphaned()
    try:
        run_worker(args.target, fd=args.fd, host=args.host, port=args.port,
                   runner_map=json.loads(args.runner_map), working_dir=args.working_dir,
                   config_path=args.config, development=args.development,
                   listen_when_ready=args.listen_when_ready,
                   shutdown_timeout_s=args.graceful_shutdown_timeout)
    except Exception as exc:  # noqa: BLE001 - one clear line and a non-zero exit for the supervisor
        if os.environ.get("BENTOLITE_DEBUG"):
            raise
        logger.error("API worker failed: %s: %s", type(exc).__name__, getattr(exc, "message", exc) or exc)
        sys.exit(EXIT_STARTUP_FAILED)
    finally:
        if args.prometheus_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # drop this worker's live gauges


if __name__ == "__main__":
    main()

"""Production serving: one supervisor process, API worker processes, runner worker processes.

The supervisor loads the service (to list its runners), makes a private run directory,
starts each runner's worker processes (``RunnerWorkerGroup``), binds the TCP socket once and
starts ``api_workers`` API worker processes that share it. It restarts crashed children with
backoff; on SIGTERM/SIGINT it stops accepting, lets the API workers drain their in-flight
requests, stops the runner workers, removes the run directory and exits 0. A runner or API
worker that fails during start-up makes it stop everything and exit non-zero.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..exceptions import BentoMLException

if TYPE_CHECKING:  # pragma: no cover
    from ..runner.process import ManagedProcess, RunnerWorkerGroup
    from ..service.service import Service

__all__ = ["Supervisor", "serve_production", "bind_socket", "EXIT_START_FAILED"]

logger = logging.getLogger("bentolite.supervisor")

#: exit status of ``serve`` when a runner or API worker fails to start
EXIT_START_FAILED = 1


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The listening TCP socket the API workers share (inheritable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BentoMLException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Starts and watches the processes serving one service (see the module docstring).

    Args:
        target: ``MODULE[:ATTR]`` or ``file.py[:ATTR]`` of the Service.
        remote_runners: runner name -> ``tcp://host:port`` addresses of runner servers
            (``start-http-server``); these runners get no local workers.
        graceful_shutdown_s: how long API workers may take to finish in-flight requests.
    """

    def __init__(self, target: str, *, working_dir: str, host: str, port: int,
                 backlog: int = 2048, api_workers: int = 1, graceful_shutdown_s: float = 30.0,
                 remote_runners: dict[str, list[str]] | None = None,
                 runner_start_timeout_s: float = 300.0) -> None:
        self.target = target
        self.working_dir = os.path.abspath(working_dir)
        self.host, self.port, self.backlog = host, port, backlog
        self.api_worker_count = api_workers
        self.graceful_shutdown_s = graceful_shutdown_s
        self.remote_runners = dict(remote_runners or {})
        self.runner_start_timeout_s = runner_start_timeout_s
        self.run_dir: Path | None = None
        self.sock: socket.socket | None = None
        self.groups: list[RunnerWorkerGroup] = []
        self.api_workers: list[ManagedProcess] = []
        self._stop = asyncio.Event()
        self._starting: list[asyncio.Task[None]] = []  # runner groups still starting
        self._failure: str | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0) or a start-up failure (non-zero)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self.start()
            if not self._stop.is_set():
                logger.info("serving %s on http://%s:%d (supervisor pid %d)", self.target,
                            self.host, self.port, os.getpid())
                await self._stop.wait()
        except BentoMLException as e:
            self._failure = str(e)
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        if self._failure is not None:
            logger.error("start-up failed: %s", self._failure)
            return EXIT_START_FAILED
        return 0

    def _on_signal(self, sig: int) -> None:
        logger.info("%s: shutting down (draining in-flight requests for up to %g s)",
                    signal.Signals(sig).name, self.graceful_shutdown_s)
        self._stop.set()

    def _fail(self, message: str) -> None:
        if self._failure is None:
            self._failure = message
        self._stop.set()

    async def start(self) -> None:
        """Run dir, runner workers, the shared socket and the API workers."""
        service = await asyncio.to_thread(self._load_service)
        self.sock = bind_socket(self.host, self.port, self.backlog)  # port taken: fail first
        self.port = self.sock.getsockname()[1]
        self.run_dir = Path(tempfile.mkdtemp(prefix="bentolite-"))
        prometheus_dir = self.run_dir / "prometheus"
        prometheus_dir.mkdir()
        config_path = await asyncio.to_thread(self._write_config)
        runner_map: dict[str, list[str]] = dict(self.remote_runners)
        starting = self._starting
        starting += [await self._start_group(runner, prometheus_dir, runner_map)
                     for runner in service.runners
                     if not runner.embedded and runner.name not in self.remote_runners]
        for index in range(self.api_worker_count):
            await self._start_api_worker(index, runner_map, config_path, prometheus_dir)
        # Runners load while the API workers already answer /readyz (503 naming them).
        # Starts still pending at a stop are cancelled by stop(), after the API workers drain.
        stop_waiter = asyncio.ensure_future(self._stop.wait())
        try:
            while starting and not self._stop.is_set():
                done, _ = await asyncio.wait([*starting, stop_waiter],
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in done - {stop_waiter}:
                    starting.remove(task)
                    task.result()  # a RunnerStartError carries the worker's traceback
        finally:
            stop_waiter.cancel()

    def _load_service(self) -> Service:
        from ..service.loader import load

        service = load(self.target, self.working_dir)
        for hook in service.deployment_hooks:  # once per deployment, before any worker
            hook()
        return service

    def _write_config(self) -> str:
        from ..config import dump_config, get_config

        assert self.run_dir is not None
        path = self.run_dir / "bentolite-config.yaml"
        path.write_text(yaml.safe_dump(dump_config(get_config()), sort_keys=False))
        return str(path)

    async def _start_group(self, runner: Any, prometheus_dir: Path,
                           runner_map: dict[str, list[str]]) -> asyncio.Task[None]:
        """Start ``runner``'s workers in the background; its socket paths go in ``runner_map``."""
        from ..runner.process import RunnerWorkerGroup
        from ..runner.worker import PARENT_PID_ENV

        assert self.run_dir is not None
        group = RunnerWorkerGroup(
            runner, self.target, self.run_dir / "runners", working_dir=self.working_dir,
            extra_env={"PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir),
                       PARENT_PID_ENV: str(os.getpid())},
            start_timeout_s=self.runner_start_timeout_s, reserved_cpus=self.api_worker_count)
        self.groups.append(group)
        task = asyncio.ensure_future(group.start())
        # The group picks its socket paths first thing in start(); the API workers need
        # them before the workers are ready.
        while not group.addresses and not task.done():
            await asyncio.sleep(0.01)
        if task.done() and task.exception() is not None:
            task.result()
        runner_map[runner.name] = list(group.addresses)
        return task

    async def _start_api_worker(self, index: int, runner_map: dict[str, list[str]],
                                config_path: str, prometheus_dir: Path) -> None:
        from ..runner.process import ManagedProcess
        from ..runner.worker import PARENT_PID_ENV

        assert self.sock is not None
        fd = self.sock.fileno()
        argv = [sys.executable, "-m", "bentolite.server.api_worker", "--target", self.target,
                "--working-dir", self.working_dir, "--fd", str(fd),
                "--runner-map", json.dumps(runner_map), "--config", config_path,
                "--worker-id", str(index), "--prometheus-dir", str(prometheus_dir),
                "--graceful-shutdown-timeout", str(self.graceful_shutdown_s), "--watch-parent",
                # listen once the runner clients exist (instant: they do not wait for the
                # runner workers), so no worker answers "runners still starting" after
                # another has said ready
                "--listen-when-ready"]
        env = dict(os.environ)
        env["BENTOLITE_CONFIG"] = config_path
        env[PARENT_PID_ENV] = str(os.getpid())
        env.pop("BENTOLITE_CONFIG_OPTIONS", None)
        env.pop("BENTOML_CONFIG_OPTIONS", None)
        proc = ManagedProcess(argv, name=f"api:{index}", env=env, cwd=self.working_dir,
                              pass_fds=[fd], on_exit=self._on_api_worker_exit)
        self.api_workers.append(proc)
        await proc.start()

    def _on_api_worker_exit(self, proc: ManagedProcess) -> None:
        from .api_worker import EXIT_STARTUP_FAILED

        # Its first start failed: it would fail the same way again, so give up. A worker
        # that crashed later is restarted (with backoff) by its ManagedProcess.
        if proc.last_returncode == EXIT_STARTUP_FAILED and proc.restarts == 0:
            proc.restart = False
            self._fail(f"API worker {proc.name} failed to start:\n{proc.output_tail()}")

    async def stop(self) -> None:
        """Stop accepting, drain the API workers, stop the runner workers, clean up."""
        if self.sock is not None:
            self.sock.close()  # our copy: the socket closes once every API worker lets go
            self.sock = None
        # API workers finish in-flight requests (which may still call runners) first.
        await asyncio.gather(*(p.stop(self.graceful_shutdown_s + 5.0) for p in self.api_workers))
        for task in self._starting:  # a runner still loading: its start is of no use now
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.gather(*(g.stop(grace_s=10.0) for g in self.groups))
        if self.run_dir is not None:
            await asyncio.to_thread(shutil.rmtree, self.run_dir, True)


def serve_production(target: str, **options: Any) -> int:
    """Run a :class:`Supervisor` for ``target`` until it stops; returns the exit status."""
    supervisor = Supervisor(target, **options)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the lock file
        return asyncio.run(supervisor.run())
    return uvloop.run(supervisor.run())

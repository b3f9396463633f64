"""Production serving: one supervisor process, API worker processes, runner worker processes.

The supervisor lists the service's runners in a forked child (so the user's code and its
imports, numpy and models, never load in this long-lived process), makes a private run
directory, starts each runner's worker processes (``RunnerWorkerGroup``), binds the TCP socket once and
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

import attrs
import yaml

from ..exceptions import BentoMLException

if TYPE_CHECKING:  # pragma: no cover
    from ..runner.process import ManagedProcess, RunnerWorkerGroup

__all__ = ["Plan", "Supervisor", "serve_production", "bind_socket", "plan_runners", "EXIT_START_FAILED"]

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


@attrs.frozen
class Plan:
    """What the supervisor starts for a service.

    Attributes:
        runners: runner name -> {worker index: env} for the runners that need workers here.
        api_workers: how many API workers (``--api-workers``, else a new-style root
            service's own ``workers``, else 1).
        api_env: the env of each API worker, beyond the supervisor's (a new-style root's
            ``resources``: thread limits, GPUs); empty for a v1 service.
    """

    runners: dict[str, dict[int, dict[str, str]]]
    api_workers: int
    api_env: list[dict[str, str]] = attrs.field(factory=list)

    def env_of_api_worker(self, index: int) -> dict[str, str]:
        return self.api_env[index % len(self.api_env)] if self.api_env else {}


def plan_runners(target: str, working_dir: str, api_workers: int | None,
                 remote: set[str]) -> Plan:
    """The :class:`Plan` for ``target`` (runners in ``remote`` get no workers here).

    The service is loaded, and its deployment hooks run, in a forked child that reports back
    over a pipe and exits: the supervisor itself stays small (about 25 MiB less with a numpy
    service) and the user's import-time state never lives in it. Without ``os.fork``, in this
    process.
    """
    if not hasattr(os, "fork"):  # pragma: no cover - not on Linux or macOS
        return _plan(target, working_dir, api_workers, remote)
    read_fd, write_fd = os.pipe()
    for handler in logging.getLogger().handlers:  # or the child writes them out a second time
        handler.flush()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's clean-up
        code = 1
        try:
            os.close(read_fd)
            # the parent's loop owns the signal wake-up fd: a signal here must not reach it
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            try:
                reply: dict[str, Any] = {
                    "plan": attrs.asdict(_plan(target, working_dir, api_workers, remote))}
                code = 0
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                reply = {"error": _describe_load_error(exc)}
            with os.fdopen(write_fd, "w") as pipe:
                json.dump(reply, pipe)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    if not text:
        raise BentoMLException(f"loading {target} killed its process before it answered")
    reply = json.loads(text)
    if "error" in reply:
        raise BentoMLException(reply["error"])
    plan = reply["plan"]
    plan["runners"] = {name: {int(i): env for i, env in workers.items()}
                       for name, workers in plan["runners"].items()}
    return Plan(**plan)


def _plan(target: str, working_dir: str, api_workers: int | None, remote: set[str]) -> Plan:
    from ..services.loader import load

    service = load(target, working_dir)
    for hook in service.deployment_hooks:  # once per deployment, before any worker
        hook()
    count = api_workers or getattr(service, "api_workers", None) or 1
    runners = {runner.name: runner.scheduled_workers(reserved_cpus=count)
               for runner in service.runners if not runner.embedded and runner.name not in remote}
    # a new-style root runs embedded in the API workers: they get its resources' env
    api_env = [env for runner in service.runners if runner.embedded
               and getattr(runner, "definition", None) is not None
               for env in runner.scheduled_workers().values()]
    return Plan(runners, count, api_env)


def _describe_load_error(exc: BaseException) -> str:
    if isinstance(exc, BentoMLException):
        return str(exc)
    import traceback

    # the user's own code failed: its traceback is what they need to see
    return (f"loading the service failed:\n"
            f"{''.join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()}")


class Supervisor:
    """Starts and watches the processes serving one service (see the module docstring).

    Args:
        target: ``MODULE[:ATTR]`` or ``file.py[:ATTR]`` of the Service.
        remote_runners: runner name -> ``tcp://host:port`` addresses of runner servers
            (``start-http-server``); these runners get no local workers.
        graceful_shutdown_s: how long API workers may take to finish in-flight requests.
    """

    def __init__(self, target: str, *, working_dir: str, host: str, port: int,
                 backlog: int = 2048, api_workers: int | None = None,
                 graceful_shutdown_s: float = 30.0,
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
        plan = await asyncio.to_thread(plan_runners, self.target, self.working_dir,
                                       self.api_worker_count, set(self.remote_runners))
        self.api_worker_count = plan.api_workers
        self.sock = bind_socket(self.host, self.port, self.backlog)  # port taken: fail first
        self.port = self.sock.getsockname()[1]
        self.run_dir = Path(tempfile.mkdtemp(prefix="bentolite-"))
        prometheus_dir = self.run_dir / "prometheus"
        prometheus_dir.mkdir()
        config_path = await asyncio.to_thread(self._write_config)
        runner_map: dict[str, list[str]] = dict(self.remote_runners)
        starting = self._starting
        starting += [await self._start_group(name, workers, prometheus_dir, runner_map)
                     for name, workers in plan.runners.items()]
        for index in range(self.api_worker_count):
            await self._start_api_worker(index, runner_map, config_path, prometheus_dir,
                                         plan.env_of_api_worker(index))
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

    def _write_config(self) -> str:
        from ..config import dump_config, get_config

        assert self.run_dir is not None
        path = self.run_dir / "bentolite-config.yaml"
        path.write_text(yaml.safe_dump(dump_config(get_config()), sort_keys=False))
        return str(path)

    async def _start_group(self, name: str, workers: dict[int, dict[str, str]],
                           prometheus_dir: Path,
                           runner_map: dict[str, list[str]]) -> asyncio.Task[None]:
        """Start runner ``name``'s workers (index -> env) in the background; their socket
        paths go in ``runner_map``."""
        from ..runner.process import PARENT_PID_ENV, RUNNER_MAP_ENV, RunnerWorkerGroup

        assert self.run_dir is not None
        group = RunnerWorkerGroup(
            name, self.target, self.run_dir / "runners", working_dir=self.working_dir,
            env_map=workers, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir),
                                        PARENT_PID_ENV: str(os.getpid()),
                                        # the runners started before this one (a service's
                                        # dependencies come first): what it may call
                                        RUNNER_MAP_ENV: json.dumps(runner_map)},
            start_timeout_s=self.runner_start_timeout_s)
        self.groups.append(group)
        task = asyncio.ensure_future(group.start())
        # The group picks its socket paths first thing in start(); the API workers need
        # them before the workers are ready.
        while not group.addresses and not task.done():
            await asyncio.sleep(0.01)
        if task.done() and task.exception() is not None:
            task.result()
        runner_map[name] = list(group.addresses)
        return task

    async def _start_api_worker(self, index: int, runner_map: dict[str, list[str]],
                                config_path: str, prometheus_dir: Path,
                                extra_env: dict[str, str]) -> None:
        from ..runner.process import PARENT_PID_ENV, ManagedProcess

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
        env = {**os.environ, **extra_env}
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

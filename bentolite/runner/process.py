"""Child process supervision: ``ManagedProcess`` (one child, restarted on crash with backoff)
and ``RunnerWorkerGroup`` (all worker processes of one runner, with readiness).
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import yaml

from ..exceptions import BentoMLException

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Runner

__all__ = ["ManagedProcess", "RunnerWorkerGroup", "RunnerStartError", "describe_exit"]

logger = logging.getLogger(__name__)

#: env var with JSON {runner name: [addresses]} of the runners a worker's runnable may call
RUNNER_MAP_ENV = "BENTOLITE_RUNNER_MAP"
#: env var with the PID of the supervisor that started a worker (workers stop when it is gone)
PARENT_PID_ENV = "BENTOLITE_PARENT_PID"

#: Longest AF_UNIX path most platforms accept (108 on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100
_FORWARD_CHUNK = 64 * 1024


class RunnerStartError(BentoMLException):
    """A runner worker died (or never became ready) during start-up."""


def describe_exit(returncode: int) -> str:
    """``"exit code 3"`` or ``"signal SIGKILL"`` for a process return code."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class ManagedProcess:
    """One supervised child: started, watched, restarted on crash with exponential backoff.

    Its stdout and stderr are merged and forwarded line by line to ``output`` (default: this
    process's stderr); the last ``tail_lines`` lines are kept for error messages.

    Args:
        argv: the command line.
        name: label for logs (``"runner:iris:0"``).
        env: full environment of the child (default: this process's).
        restart: restart after an unexpected exit (can be changed later).
        backoff_initial_s / backoff_max_s: restart delays, doubling per consecutive crash;
            reset once the child has run ``stable_after_s``.
        on_exit: called with the ManagedProcess after every exit (before any restart).
        pass_fds: file descriptors the child inherits (e.g. a shared listening socket).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        restart: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_after_s: float = 10.0,
        tail_lines: int = 80,
        output: Any = None,
        on_exit: Callable[[ManagedProcess], None] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.argv = list(argv)
        self.pass_fds = tuple(pass_fds)
        self.name = name
        self.env = env
        self.cwd = cwd
        self.restart = restart
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.on_exit = on_exit
        self.restarts = 0
        self.exit_count = 0
        self.last_returncode: int | None = None
        self._output = output
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self._started_at = 0.0
        self._exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def output_tail(self) -> str:
        return "\n".join(self._tail)

    async def start(self) -> None:
        """Spawn the child and start watching it."""
        self._stopping = False
        await self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _spawn(self) -> None:
        self._tail.clear()
        self._exited.clear()
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, cwd=self.cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
            pass_fds=self.pass_fds)
        self._started_at = time.monotonic()
        self._reader = asyncio.get_running_loop().create_task(self._forward(self._proc))

    async def _forward(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        out = self._output or sys.stderr
        partial = b""
        while True:
            # whole chunks, not lines: one write for a burst of access-log lines
            chunk = await proc.stdout.read(_FORWARD_CHUNK)
            if not chunk:
                if partial:
                    chunk = b"\n"
                else:
                    return
            data = partial + chunk
            cut = data.rfind(b"\n") + 1  # forward whole lines only: children never interleave
            partial = data[cut:]
            if not cut:
                continue
            text = data[:cut].decode(errors="replace")
            self._tail.extend(text[:-1].split("\n"))
            try:
                out.write(text)
                out.flush()
            except (OSError, ValueError):  # output closed: keep draining the pipe
                pass

    async def _watch(self) -> None:
        backoff = self.backoff_initial_s
        while True:
            assert self._proc is not None
            returncode = await self._proc.wait()
            if self._reader is not None:
                await self._reader
            self.last_returncode = returncode
            self.exit_count += 1
            self._exited.set()
            if self._stopping:
                return
            ran_s = time.monotonic() - self._started_at
            logger.warning("%s (pid %s) exited with %s after %.1f s", self.name,
                           self._proc.pid, describe_exit(returncode), ran_s)
            if self.on_exit is not None:
                self.on_exit(self)
            if not self.restart or self._stopping:
                return
            if ran_s >= self.stable_after_s:
                backoff = self.backoff_initial_s
            logger.warning("restarting %s in %.1f s", self.name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)
            if self._stopping:
                return
            await self._spawn()
            self.restarts += 1

    async def wait_exit(self) -> int:
        """Wait for the current child to exit; returns its return code."""
        await self._exited.wait()
        assert self.last_returncode is not None
        return self.last_returncode

    def send_signal(self, sig: int) -> None:
        """Signal the child (only our own PID)."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(sig)

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; no restart afterwards."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except asyncio.TimeoutError:
                logger.warning("%s (pid %s) ignored SIGTERM for %.1f s; killing it", self.name,
                               proc.pid, grace_s)
                proc.kill()
                await proc.wait()
        if self._watcher is not None:
            if not self._watcher.done():
                self._watcher.cancel()
            try:
                await self._watcher
            except asyncio.CancelledError:
                pass
        if self._reader is not None and not self._reader.done():
            try:
                await asyncio.wait_for(self._reader, 1.0)
            except asyncio.TimeoutError:
                self._reader.cancel()


class RunnerWorkerGroup:
    """The worker processes of one runner (``runner.scheduled_worker_count`` by default).

    Usage::

        async with RunnerWorkerGroup(runner, "service:svc", run_dir) as group:
            runner.init_client(group.addresses)

    Args:
        runner: the Runner (its strategy gives the worker count and each worker's env), or
            just its name when ``env_map`` is given (scheduled in another process).
        target: ``MODULE:ATTR`` the workers import to find the runner (a Service or Runner).
        run_dir: directory for the workers' Unix sockets and the config they load.
        working_dir: put first on the workers' ``sys.path`` (default: the current directory).
        worker_count / env_map: override the strategy.
        extra_env: added to every worker's env (e.g. ``PROMETHEUS_MULTIPROC_DIR``).
        start_timeout_s: how long a worker may take to load its model and become ready.
        reserved_cpus: cores the API workers of this host use; a multi-threaded runnable
            with an unset ``resources`` config gets the rest (see ``runner_resources_beside``).
    """

    def __init__(
        self,
        runner: Runner | str,
        target: str,
        run_dir: str | os.PathLike[str],
        *,
        working_dir: str | None = None,
        worker_count: int | None = None,
        env_map: dict[int, dict[str, str]] | None = None,
        extra_env: dict[str, str] | None = None,
        python: str = sys.executable,
        start_timeout_s: float = 300.0,
        restart_backoff_s: float = 0.5,
        output: Any = None,
        reserved_cpus: float = 0,
    ) -> None:
        self.runner = None if isinstance(runner, str) else runner
        self.runner_name = runner if isinstance(runner, str) else runner.name
        if self.runner is None and env_map is None:
            raise ValueError("RunnerWorkerGroup: give env_map with a runner name")
        self.target = target
        self.run_dir = Path(run_dir)
        self.working_dir = working_dir  # made absolute in start() (file-system calls)
        # None: from the runner's strategy, resolved in start() (it reads cgroup files)
        self.worker_count = worker_count
        self.env_map = env_map
        self.reserved_cpus = reserved_cpus
        self.extra_env = dict(extra_env or {})
        self.python = python
        self.start_timeout_s = start_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self._output = output
        self._socket_dir: Path | None = None
        self._own_socket_dir = False
        self.processes: list[ManagedProcess] = []
        self.addresses: list[str] = []

    def _socket_paths(self) -> list[str]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tag = hashlib.sha1(f"{os.getpid()}-{id(self)}".encode()).hexdigest()[:8]
        assert self.worker_count is not None
        names = [f"{self.runner_name[:40]}-{tag}-{i}.sock" for i in range(self.worker_count)]
        base = self.run_dir
        if any(len(str(base / n)) > _MAX_SOCKET_PATH for n in names):
            base = Path(tempfile.mkdtemp(prefix="bentolite-"))  # run_dir is too deep for AF_UNIX
            self._own_socket_dir = True
        self._socket_dir = base
        return [str(base / n) for n in names]

    def _prepare(self) -> tuple[list[str], str, list[dict[str, str]]]:
        self.working_dir = os.path.abspath(self.working_dir or os.getcwd())
        if self.env_map is None:
            assert self.runner is not None
            self.env_map = self.runner.scheduled_workers(reserved_cpus=self.reserved_cpus)
        if self.worker_count is None:
            self.worker_count = len(self.env_map)
        addresses = self._socket_paths()
        config_path = self._config_file()
        return addresses, config_path, [self.worker_env(i, config_path)
                                        for i in range(len(addresses))]

    def _config_file(self) -> str:
        from ..config import dump_config, get_config

        path = self.run_dir / "bentolite-config.yaml"
        path.write_text(yaml.safe_dump(dump_config(get_config()), sort_keys=False))
        return str(path)

    def worker_env(self, index: int, config_path: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update((self.env_map or {}).get(index, {}))
        env.update(self.extra_env)
        # the workers see the same configuration as this process, however it was loaded
        env["BENTOLITE_CONFIG"] = config_path
        env.pop("BENTOLITE_CONFIG_OPTIONS", None)
        env.pop("BENTOML_CONFIG_OPTIONS", None)
        env["BENTOLITE_RUNNER_WORKER_INDEX"] = str(index)
        # the workers import bentolite from where this process did (a relative PYTHONPATH
        # entry would break under the workers' working_dir)
        package_root = str(Path(__file__).resolve().parents[2])
        if "site-packages" not in package_root:
            paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            env["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
        return env

    async def start(self) -> None:
        """Start every worker and wait until each is ready (fails fast if one dies)."""
        # file-system set-up off the event loop
        self.addresses, config_path, envs = await asyncio.to_thread(self._prepare)
        for index, socket_path in enumerate(self.addresses):
            assert self.working_dir is not None
            argv = [self.python, "-m", "bentolite.runner.worker", "--target", self.target,
                    "--runner-name", self.runner_name, "--socket", socket_path,
                    "--worker-index", str(index), "--working-dir", self.working_dir]
            proc = ManagedProcess(
                argv, name=f"runner:{self.runner_name}:{index}",
                env=envs[index], cwd=self.working_dir,
                restart=False, backoff_initial_s=self.restart_backoff_s, output=self._output)
            self.processes.append(proc)
        try:
            for proc in self.processes:
                await proc.start()
            await asyncio.gather(*(self._wait_ready(i) for i in range(len(self.processes))))
        except BaseException:
            await self.stop(grace_s=2.0)
            raise
        for proc in self.processes:
            proc.restart = True

    async def _wait_ready(self, index: int) -> None:
        from .protocol import ping_worker

        proc, address = self.processes[index], self.addresses[index]
        deadline = time.monotonic() + self.start_timeout_s
        delay = 0.01
        while True:
            if proc.exit_count:
                await proc.wait_exit()
                raise RunnerStartError(
                    f"runner {self.runner_name!r} worker {index} exited with "
                    f"{describe_exit(proc.last_returncode or 0)} during start-up:\n"
                    f"{proc.output_tail()}")
            if await ping_worker(address, 1.0):
                # ready (callers may use it now): a crash from here on is restarted, even
                # while other workers of the group are still loading
                proc.restart = True
                return
            if time.monotonic() > deadline:
                raise RunnerStartError(
                    f"runner {self.runner_name!r} worker {index} was not ready after "
                    f"{self.start_timeout_s:g} s; its output so far:\n{proc.output_tail()}")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    async def is_ready(self, timeout_s: float = 1.0) -> bool:
        """Whether at least one worker answers now."""
        from .protocol import ping_worker

        results = await asyncio.gather(*(ping_worker(a, timeout_s) for a in self.addresses))
        return any(results)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after ``grace_s``)."""
        await asyncio.gather(*(p.stop(grace_s) for p in self.processes))
        await asyncio.to_thread(self._clean_up_files)

    def _clean_up_files(self) -> None:
        for address in self.addresses:
            try:
                os.unlink(address)
            except OSError:
                pass
        if self._own_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def __aenter__(self) -> RunnerWorkerGroup:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

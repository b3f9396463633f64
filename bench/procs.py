"""Server processes for the benchmarks: start, wait for /readyz, measure RSS, stop, reap.

Only processes this module started (and their descendants, found through /proc) are ever
signalled, each by PID; the orchestrator becomes a child subreaper so that workers orphaned
by a dying server are reparented to it and reaped here.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "ServerProcess",
    "become_subreaper",
    "descendants",
    "free_port",
    "reap_orphans",
    "tree_rss_kb",
]

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to this process (Linux); True on success."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(pids: list[int]) -> None:
    """Collect the exit status of those ``pids`` that became our (finished) children."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child (its own parent reaps it) or already reaped
            pass


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return text[text.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22 of stat: start time since boot


def descendants(root_pid: int) -> list[int]:
    """PIDs of every live descendant of ``root_pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(root_pid: int) -> tuple[int, int]:
    """(total VmRSS in KiB, process count) of ``root_pid`` and its descendants."""
    pids = [root_pid, *descendants(root_pid)]
    sizes = [_rss_kb(pid) for pid in pids]
    return sum(sizes), sum(1 for size in sizes if size)


def tree_io_bytes(root_pid: int) -> int:
    """Bytes read plus written through system calls (``rchar + wchar`` of /proc/PID/io) by
    ``root_pid`` and its descendants: what a request moves between processes and the kernel."""
    total = 0
    for pid in [root_pid, *descendants(root_pid)]:
        try:
            fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        except (OSError, ValueError):  # exited meanwhile
            continue
        total += int(fields.get("rchar", 0)) + int(fields.get("wchar", 0))
    return total


def cpu_s(pid: int, stat: str = "stat") -> float:
    """CPU seconds (user + system) ``pid`` has used, from /proc/PID/stat (``stat`` may name
    one thread's instead: ``task/TID/stat``)."""
    fields = Path(f"/proc/{pid}/{stat}").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid: int) -> int:
    """Minor page faults ``pid`` has taken (pages the kernel mapped in, zeroed or shared)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds used by ``root_pid`` and its living descendants."""
    total = 0.0
    for pid in [root_pid, *descendants(root_pid)]:
        try:
            total += cpu_s(pid)
        except (OSError, IndexError):  # exited meanwhile
            continue
    return total


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (ephemeral range)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server under test: ``start`` it, ``wait_ready``, measure, then ``stop``."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, port: int,
                 stop_signal: signal.Signals = signal.SIGTERM):
        self.argv = argv
        self.stop_signal = stop_signal
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def start(self) -> None:
        """Launch the server, its output going to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the terminal reaches only the orchestrator
                # a stop signal inherited as ignored (a background job's SIGINT) would never
                # reach the server's handler: LitServe, stopped by SIGINT, then waits forever
                preexec_fn=functools.partial(signal.signal, self.stop_signal, signal.SIG_DFL),
            )

    def wait_ready(self, timeout_s: float = 120.0, poll_s: float = 0.02) -> float:
        """Seconds from launch until ``GET /readyz`` answers 200."""
        url = f"http://127.0.0.1:{self.port}/readyz"
        deadline = self.started_at + timeout_s
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, OSError):
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode} before ready; see {self.log_path}"
                )
            if time.perf_counter() > deadline:
                raise TimeoutError(f"server not ready after {timeout_s} s; see {self.log_path}")
            time.sleep(poll_s)

    def rss(self) -> tuple[int, int]:
        """(total VmRSS KiB, process count) of the server's process tree."""
        return tree_rss_kb(self.pid)

    def stop(self, grace_s: float = 15.0) -> list[int]:
        """Signal the server (``stop_signal``), SIGKILL what is left after ``grace_s``; return
        killed PIDs."""
        if self.process is None:
            return []
        tree = {pid: _start_ticks(pid) for pid in [self.pid, *descendants(self.pid)]}
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.process.poll() is None:  # workers started during shutdown count too
                tree.update({pid: _start_ticks(pid) for pid in descendants(self.pid) if pid not in tree})
            reap_orphans([pid for pid in tree if pid != self.pid])
            if self.process.poll() is not None and not self._alive(tree):
                break
            time.sleep(0.05)
        killed = []
        for pid in self._alive(tree):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        self.process.wait()
        end = time.monotonic() + 5.0
        while self._alive(tree) and time.monotonic() < end:
            reap_orphans([pid for pid in tree if pid != self.pid])
            time.sleep(0.05)
        reap_orphans([pid for pid in tree if pid != self.pid])
        return killed

    @staticmethod
    def _alive(tree: dict[int, str | None]) -> list[int]:
        """PIDs from ``tree`` still running as the same process (not a reused PID, not a zombie)."""
        alive = []
        for pid, ticks in tree.items():
            fields = _stat_fields(pid)
            if fields and fields[0] != "Z" and fields[19] == ticks and pid != os.getpid():
                alive.append(pid)
        return alive

"""v1's Python server API: ``bentoml.HTTPServer`` and ``bentoml.serve``, for scripts and tests.

    server = bentoml.HTTPServer("service.py:svc", port=3000)
    with server.start() as client:          # returns once /readyz is 200
        print(client.classify([[5.9, 3.0, 5.1, 1.8]]))
    # the server is stopped (SIGTERM, in-flight requests drained) when the block ends

The server is a ``bentolite serve`` child process (production mode by default).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Mapping

from ..exceptions import BentoMLException

__all__ = ["HTTPServer", "serve"]


class _Started:
    """What ``start()`` returns: the running server, usable as ``with server.start() as client``."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server

    def __enter__(self) -> Any:
        return self.server.get_client()

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()


class HTTPServer:
    """A ``bentolite serve`` of ``bento`` (``module:attr`` or ``file.py[:attr]``) on ``host:port``.

    ``timeout`` is how long ``start()`` waits for ``/readyz`` (v1 default 10 s; loading large
    models may need more). ``port=None`` picks a free port.
    """

    def __init__(self, bento: str, reload: bool = False, production: bool = True,
                 env: Mapping[str, str] | None = None, host: str = "127.0.0.1",
                 port: int | None = 3000, timeout: float = 10, working_dir: str | None = None,
                 api_workers: int | None = None, backlog: int | None = None,
                 config: str | None = None, **unsupported: Any) -> None:
        ssl = [key for key, value in unsupported.items() if key.startswith("ssl_") and value]
        if ssl:
            raise BentoMLException(f"HTTPServer: SSL options are not supported ({', '.join(ssl)})")
        others = [key for key in unsupported if not key.startswith("ssl_")]
        if others:
            raise TypeError(f"HTTPServer got unexpected arguments: {', '.join(others)}")
        self.bento = bento
        self.reload = reload
        self.production = production and not reload
        self.env = dict(env or {})
        self.host = host
        self.port = port or _free_port(host)
        self.timeout = timeout
        self.working_dir = working_dir
        self.api_workers = api_workers
        self.backlog = backlog
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"

    def args(self) -> list[str]:
        """The ``bentolite serve`` command line this server runs."""
        argv = [sys.executable, "-c", "from bentolite.cli import main; main()", "serve",
                self.bento, "--host", self.host, "--port", str(self.port)]
        argv.append("--reload" if self.reload else
                    "--production" if self.production else "--development")
        for flag, value in (("--working-dir", self.working_dir), ("--config", self.config),
                            ("--api-workers", self.api_workers), ("--backlog", self.backlog)):
            if value is not None:
                argv += [flag, str(value)]
        return argv

    def start(self, blocking: bool = False, env: Mapping[str, str] | None = None) -> _Started:
        """Launch the server; return once it is ready (or, with ``blocking``, when it exits)."""
        if self.process is not None and self.process.poll() is None:
            raise BentoMLException(f"the server of {self.bento} is already running")
        self.process = subprocess.Popen(self.args(), env={**os.environ, **self.env, **(env or {})})
        if blocking:
            try:
                self.process.wait()
            finally:
                self.stop()
            return _Started(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return _Started(self)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BentoMLException(
                    f"the server of {self.bento} exited with code {self.process.returncode} "
                    "before it was ready (its output above says why)")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise BentoMLException(f"the server of {self.bento} was not ready after {self.timeout:g} s; "
                               "raise HTTPServer(timeout=...) for slow model loads")

    def get_client(self) -> Any:
        """A ``bentolite.client.Client`` with one method per API of the running server."""
        from ..client import Client

        return Client.from_url(self.url)

    def stop(self, timeout_s: float = 40.0) -> int | None:
        """SIGTERM the server (it drains in-flight requests); SIGKILL if it outlives ``timeout_s``."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> HTTPServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(bento: str, server_type: str = "http", **kwargs: Any) -> HTTPServer:
    """Start ``bento`` in the background and return its (ready) :class:`HTTPServer`."""
    if server_type != "http":
        raise BentoMLException(f"server_type={server_type!r} is not supported (only 'http')")
    server = HTTPServer(bento, **kwargs)
    server.start()
    return server


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host if host != "0.0.0.0" else "127.0.0.1", 0))
        return sock.getsockname()[1]

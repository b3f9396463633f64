"""A runner worker serving HTTP on TCP: token required before anything is unpickled."""
from __future__ import annotations

import asyncio
import io
import os
import pickle
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bentolite.config import load_config
from bentolite.exceptions import BadInput, Unauthorized
from bentolite.runner.process import ManagedProcess
from bentolite.runner.protocol import CALL, pack_frame
from tests.runner import runner_targets as targets

ROOT = str(Path(__file__).resolve().parents[2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(config: Path, port: int, output: Any) -> ManagedProcess:
    env = dict(os.environ, BENTOLITE_CONFIG=str(config), PYTHONPATH=ROOT)
    env.pop("BENTOLITE_CONFIG_OPTIONS", None)
    argv = [sys.executable, "-m", "bentolite.runner.worker", "--target",
            "tests.runner.runner_targets:svc", "--runner-name", "echo", "--port", str(port)]
    return ManagedProcess(argv, name="runner-server", env=env, cwd=ROOT, restart=False,
                          output=output)


class Trap:
    """Unpickling this creates a file: proof that a body was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def test_tcp_runner_server_requires_the_token(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("runners:\n  auth_token: s3cret\n")
    port = free_port()
    trap = tmp_path / "unpickled"

    async def main() -> None:
        proc = server(config, port, io.StringIO())
        await proc.start()
        runner = targets.echo_runner
        try:
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.get(f"{url}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
                body = b"".join(bytes(p) for p in pack_frame(
                    CALL, 1, {"m": "__call__"}, [pickle.dumps(((Trap(str(trap)),), {}))]))
                for headers in ({}, {"Authorization": "Bearer wrong"}):
                    async with session.post(f"{url}/call/__call__", data=body,
                                            headers=headers) as r:
                        assert r.status == 401
                        assert "auth token" in (await r.json())["error"]
            assert not trap.exists()

            load_config(config, "")
            runner.init_client([f"tcp://127.0.0.1:{port}"])
            try:
                assert await runner.runner_handle_is_ready(1.0)
                assert await runner.async_run({"a": [1, 2]}) == {"a": [1, 2]}
                assert await asyncio.to_thread(runner.run, 5) == 5
            finally:
                runner.destroy()
            load_config(None, "runners.auth_token=wrong")
            runner.init_client([f"tcp://127.0.0.1:{port}"])
            try:
                with pytest.raises(Unauthorized, match="auth token"):
                    await runner.async_run(1)
            finally:
                runner.destroy()
        finally:
            load_config(None, "")
            await proc.stop(grace_s=5)
        assert proc.last_returncode == 0

    asyncio.run(main())


def test_tcp_runner_server_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("runners:\n  batching:\n    enabled: true\n")

    async def main() -> None:
        proc = server(config, free_port(), io.StringIO())
        await proc.start()
        code = await asyncio.wait_for(proc.wait_exit(), 60)
        await proc.stop()
        assert code != 0
        assert "runners.auth_token" in proc.output_tail()

    asyncio.run(main())


def test_errors_cross_the_http_hop(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("runners:\n  auth_token: s3cret\n")
    port = free_port()

    async def main() -> None:
        env = dict(os.environ, BENTOLITE_CONFIG=str(config), PYTHONPATH=ROOT)
        argv = [sys.executable, "-m", "bentolite.runner.worker", "--target",
                "tests.runner.runner_targets:svc", "--runner-name", "rows", "--port", str(port)]
        proc = ManagedProcess(argv, name="rows-server", env=env, cwd=ROOT, restart=False,
                              output=io.StringIO())
        await proc.start()
        load_config(config, "")
        runner = targets.row_runner
        runner.init_client([f"tcp://127.0.0.1:{port}"])
        try:
            for _ in range(200):
                if await runner.runner_handle_is_ready(0.5):
                    break
                await asyncio.sleep(0.05)
            with pytest.raises(BadInput, match="positive"):
                await runner.fail.async_run("bad_input")
            out = await asyncio.gather(*(runner.pair.async_run([i]) for i in range(5)))
            assert [o[0] for o in out] == [[2 * i] for i in range(5)]
        finally:
            runner.destroy()
            load_config(None, "")
            await proc.stop(grace_s=5)

    asyncio.run(main())

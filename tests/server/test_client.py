"""``bentolite.client.Client`` against a real server: built from /docs.json, sync and async."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serve_helpers import Server

from bentolite.client import Client
from bentolite.exceptions import BentoMLException


def test_client_round_trips(server: Server) -> None:
    client = Client.from_url(server.url.removeprefix("http://"))
    assert {"echo_text", "double", "form", "runner_async"} <= set(client.apis)
    assert client.echo_text("hi there") == "hi there"
    assert client.call("echo_json", {"a": [1, None]}) == {"a": [1, None]}
    doubled = client.double(np.array([1.0, 2.5], dtype="float32"))
    assert isinstance(doubled, np.ndarray) and doubled.tolist() == [2.0, 5.0]
    assert client.form(name="ann", values={"k": 1}) == {"name": "ann", "values": {"k": 1}}
    assert client.runner_sync([1, 2]) == [2, 3]
    assert client.health()
    Client.wait_until_server_ready("127.0.0.1", server.port, timeout=5)


def test_async_client(server: Server) -> None:
    client = Client.from_url(server.url)

    async def calls() -> list[object]:
        return list(await asyncio.gather(
            client.async_runner_async([10]), client.async_call("echo_text", "x")))

    assert asyncio.run(calls()) == [[11], "x"]


def test_client_errors(server: Server) -> None:
    client = Client.from_url(server.url)
    with pytest.raises(BentoMLException, match="Error making request: 500: .*boom in user code"):
        client.fails({})
    with pytest.raises(BentoMLException, match="no API 'nope'"):
        client.call("nope", 1)
    with pytest.raises(BentoMLException, match="float32"):
        client.double(np.array(["a"]))  # the descriptor rebuilt from /docs.json enforces float32


def test_wait_until_server_ready_times_out_on_a_closed_port() -> None:
    from serve_helpers import free_port

    with pytest.raises(TimeoutError, match="not ready within 0.3 s"):
        Client.wait_until_server_ready("127.0.0.1", free_port(), timeout=0.3)

"""New-style services served for real: each dependency in its own worker processes (started,
watched and restarted by the supervisor), the root in the API worker; and all in one process
with --development."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.prod_helpers import Command, alive, cmdline, free_port, wait_for

HERE = Path(__file__).parent


def _start(tmp_path: Path, *extra: str) -> Command:
    port = free_port()
    cmd = Command(["serve", "graph_svc:Graph", "--working-dir", str(HERE), "--host",
                   "127.0.0.1", "--port", str(port), *extra], tmp_path, port=port)
    try:
        cmd.wait_ready()
    except BaseException:
        cmd.close()
        raise
    return cmd


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Command]:
    cmd = _start(tmp_path_factory.mktemp("prod"))
    yield cmd
    cmd.close()


def _worker_pids(cmd: Command, runner: str) -> set[int]:
    return {pid for pid in cmd.children()
            if f"--runner-name {runner} " in cmdline(pid) + " "}


def test_each_service_runs_in_its_own_processes(prod: Command) -> None:
    assert len(_worker_pids(prod, "generator")) == 2  # workers=2
    for name in ("leaf", "scorer", "othergenerator"):
        assert len(_worker_pids(prod, name)) == 1
    assert not _worker_pids(prod, "graph")  # the root runs in the API worker
    pids = prod.post_json("/pids", {}).json()
    assert pids["scorer"] in _worker_pids(prod, "scorer")
    assert pids["api"] not in _worker_pids(prod, "scorer")


def test_the_graph_answers_and_its_generator_calls_overlap(prod: Command) -> None:
    def spread() -> Any:  # both generator workers up: the two calls go to different ones
        reply = prod.post_json("/generate_score", {"original_sentence": "I have an idea!"})
        assert reply.status == 200, reply.body
        results = reply.json()
        return results if len({r["pid"] for r in results}) == 3 else None

    results = wait_for(spread, "three generator calls in three processes", prod)
    assert [r["generated"] for r in results] == ["I have an idea!!"] * 2 + ["I have an idea!?"]
    assert all(r["score"] == float(len(r["generated"])) for r in results)
    # the three calls ran at the same time: each started before any of them ended
    assert max(r["start"] for r in results) < min(r["end"] for r in results)


def test_defaults_nested_dependencies_and_streams(prod: Command) -> None:
    assert prod.post_json("/add", {"a": 2}).json() == 3  # b takes its default
    status, body = prod.request("POST", "/sync_chain", b'{"sentence": "deep call"}',
                                {"Content-Type": "application/json"})
    assert (status, body) == (200, b"DEEP CALL")  # Graph -> Generator worker -> Leaf worker
    status, body = prod.request("POST", "/words", b'{"sentence": "a stream of words"}',
                                {"Content-Type": "application/json"})
    assert (status, body) == (200, b"a stream of words ")


def test_bad_input_is_a_400_naming_the_field(prod: Command) -> None:
    reply = prod.post_json("/add", {"b": 2})
    assert reply.status == 400, reply.body
    assert reply.json()["field"] == "body.a"
    reply = prod.post_json("/add", {"a": "not a number"})
    assert reply.status == 400 and reply.json()["field"] == "body.a"


def test_a_blocking_call_on_the_loop_is_a_clear_error(prod: Command) -> None:
    reply = prod.post_json("/blocking_on_loop", {"sentence": "x"})
    assert reply.status == 500
    assert "use `await self.generator.to_async.loud(...)`" in reply.json()["error"]


def test_a_batchable_dependency_batches_concurrent_calls(prod: Command) -> None:
    def call(i: int) -> Any:
        reply = prod.post_json("/lengths", {"sentences": ["x" * i, "y"]})
        assert reply.status == 200, reply.body
        return reply.json()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(call, range(1, 33)))
    for i, rows in enumerate(replies, start=1):  # each caller gets its own rows back
        assert [row[0] for row in rows] == [i, 1]
    assert max(row[1] for rows in replies for row in rows) > 2  # rows of several calls batched


def test_a_killed_dependency_is_restarted_and_only_its_calls_fail(prod: Command) -> None:
    before = _worker_pids(prod, "scorer")
    victim = next(iter(before))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(prod.post_json, "/generate_score", {}) for _ in range(2)]
        os.kill(victim, signal.SIGKILL)
        statuses = [f.result().status for f in slow]
    assert set(statuses) <= {200, 503}
    wait_for(lambda: _worker_pids(prod, "scorer") - before, "a new scorer worker", prod)
    assert not alive(victim)
    wait_for(lambda: prod.post_json("/generate_score", {}).status == 200,
             "the graph to answer again", prod)
    assert prod.post_json("/add", {"a": 1}).json() == 2  # the rest never noticed


def test_development_mode_runs_every_service_in_one_process(tmp_path: Path) -> None:
    cmd = _start(tmp_path, "--development")
    try:
        pids = cmd.post_json("/pids", {}).json()
        assert pids["api"] == pids["scorer"]
        results = cmd.post_json("/generate_score", {"original_sentence": "dev"}).json()
        assert {r["pid"] for r in results} == {pids["api"]}
        status, body = cmd.request("POST", "/sync_chain", b'{"sentence": "x"}',
                                   {"Content-Type": "application/json"})
        assert (status, body) == (200, b"X")
    finally:
        cmd.close()


def test_a_v1_runner_as_a_dependency_with_two_api_workers_and_hooks(tmp_path: Path) -> None:
    hook_log = tmp_path / "hooks.log"
    port = free_port()
    cmd = Command(["serve", "mixed_svc:Mixed", "--working-dir", str(HERE), "--host",
                   "127.0.0.1", "--port", str(port)], tmp_path, port=port,
                  env={"MIXED_HOOK_LOG": str(hook_log)})
    try:
        cmd.wait_ready()
        api_pids = {pid for pid in cmd.children() if "api_worker" in cmdline(pid)}
        assert len(api_pids) == 2  # the root's workers=2 sets the API worker count
        # /readyz answers from the first API worker ready: wait for the other's root too
        wait_for(lambda: hook_log.exists() and len(hook_log.read_text().splitlines()) == 2,
                 "both API workers' startup hooks", cmd)
        runner_pids = _worker_pids(cmd, "doubler")
        assert runner_pids  # the v1 runner keeps its own worker processes
        for pid in api_pids:  # the root's resources={"cpu": 1} apply to the API workers
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert b"OMP_NUM_THREADS=1" in environ

        def call(xs: list[int]) -> Any:
            reply = cmd.post_json("/double", {"xs": xs})
            assert reply.status == 200, reply.body
            return reply.json()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(call, [[i, i + 1] for i in range(24)]))
        for i, reply in enumerate(replies):
            assert [row[0] for row in reply["rows"]] == [2 * i, 2 * i + 2]
            assert {row[2] for row in reply["rows"]} <= runner_pids
        assert {reply["api_pid"] for reply in replies} <= api_pids
        assert cmd.terminate() == 0
    finally:
        cmd.close()
    events = sorted(line.split()[0] for line in hook_log.read_text().splitlines())
    assert events == ["shutdown", "shutdown", "startup", "startup"], hook_log.read_text()


def test_bentolite_clients_call_a_new_style_server(prod: Command) -> None:
    import asyncio

    import bentolite
    from bentolite.exceptions import BentoMLException

    with bentolite.SyncHTTPClient(prod.url) as client:
        assert client.add(2) == 3 and client.add(a=2, b=5) == 7
        assert client.sync_chain("deep") == "DEEP"
        assert "".join(client.words("a b c")) == "a b c "
        with pytest.raises(BentoMLException, match="400: body.a: Field required"):
            client.add(b=1)
        with pytest.raises(TypeError, match="multiple values for a"):
            client.add(1, a=2)

    async def use_async() -> tuple[Any, str]:
        async with bentolite.AsyncHTTPClient(prod.url) as client:
            return await client.add(4), "".join([c async for c in client.words("x y")])

    assert asyncio.run(use_async()) == (5, "x y ")


BENTOML_14_SIDE = """
import json, sys
import bentoml

client = bentoml.SyncHTTPClient(sys.argv[1])
results = {
    "add": [client.add(2), client.add(a=1, b=2)],
    "text": client.sync_chain(sentence="hi there"),
    "graph": client.generate_score(original_sentence="via 1.4"),
    "words": "".join(client.words("streamed by 1.4")),
}
try:
    client.add(a="not a number")
except Exception as exc:
    results["error"] = type(exc).__name__ + ": " + str(exc)
print("RESULT " + json.dumps(results))
"""


def test_bentoml_1_4_sync_client_calls_bentolite(prod: Command, tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.peers import bentoml14_python

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(BENTOML_HOME=str(tmp_path / "bentoml-home"), BENTOML_DO_NOT_TRACK="true")
    done = subprocess.run([bentoml14_python(), "-c", BENTOML_14_SIDE, prod.url], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    results = json.loads(line[len("RESULT "):])
    assert results["add"] == [3, 3]
    assert results["text"] == "HI THERE"
    assert [r["generated"] for r in results["graph"]] == ["via 1.4!", "via 1.4!", "via 1.4?"]
    assert results["words"] == "streamed by 1.4 "
    assert "body.a" in results["error"] or "integer" in results["error"], results["error"]


def test_an_uploaded_file_is_a_path_removed_after_the_response(prod: Command) -> None:
    from bentolite.io._formdata import build_form_data

    body, content_type = build_form_data([
        ("doc", {"Content-Disposition": 'form-data; name="doc"; filename="a.txt"'}, b"12345"),
        ("note", {}, b'"hi"'),
    ])
    status, reply = prod.request("POST", "/upload", body, {"Content-Type": content_type})
    assert status == 200, reply
    answer = json.loads(reply)
    assert (answer["size"], answer["note"]) == (5, "hi")
    assert not Path(answer["path"]).exists()


def test_a_batchable_root_runs_in_its_own_worker_process(tmp_path: Path) -> None:
    port = free_port()
    cmd = Command(["serve", "batch_root_svc:BatchRoot", "--working-dir", str(HERE), "--host",
                   "127.0.0.1", "--port", str(port)], tmp_path, port=port)
    try:
        cmd.wait_ready()
        root_pids = _worker_pids(cmd, "batchroot")
        assert len(root_pids) == 1
        assert cmd.post_json("/pid", {}).json() in root_pids  # every root API runs there

        def call(i: int) -> Any:
            reply = cmd.post_json("/square", {"xs": [i]})
            assert reply.status == 200, reply.body
            return reply.json()[0]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            rows = list(pool.map(call, range(48)))
        assert [row[0] for row in rows] == [i * i for i in range(48)]
        assert {row[2] for row in rows} == root_pids
        assert max(row[1] for row in rows) > 1  # callers' rows batched together
    finally:
        cmd.close()

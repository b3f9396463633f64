"""``bentolite.ray.deployment`` on a real local Ray cluster bound to 127.0.0.1.

One cluster for the whole file, started once per test session and stopped when the file is
done (start and stop cost about 15 s each): three Serve applications,
``/rows`` (``ray_svc``: a batchable runner with 2 replicas), ``/graph`` (the inference
graph example) and ``/shout`` (a bento of ``ray_v2_svc``, a new-style service graph, by its
tag), then everything is shut down and no Ray process may be left.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from bentolite.exceptions import BentoMLException

from .example_server import EXAMPLES, save_models
from .prod_helpers import alive, children, free_port

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
#: what a local cluster needs here (shared/reference/ray.md): loopback only, no token, no
#: stats; and a router that waits for a busy replica's queue length (default 0.1 s: a late
#: answer leaves that replica out of the cache, and every call goes to the other one; 1 s
#: still lost one at the end of a full suite on 2 cores)
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "3.0",
           "RAY_SERVE_MAX_QUEUE_LENGTH_RESPONSE_DEADLINE_S": "6.0"}
SMALL = {"ray_actor_options": {"num_cpus": 0.1}}  # 2 logical CPUs hold every replica
SENTENCE = "bentolite scales out"


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


class Cluster:
    def __init__(self, url: str, graph_svc: Any) -> None:
        self.url = url
        self.graph_svc = graph_svc  # the inference graph, as loaded in this process

    def post(self, path: str, body: bytes, content_type: str = "application/json",
             timeout_s: float = 60.0) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, _lower(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, _lower(e.headers), e.read()

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


def _descendants(pid: int) -> set[int]:
    """Live processes under ``pid`` (Ray's workers are the raylet's children)."""
    found = {child for child in children(pid) if alive(child)}
    for child in list(found):
        found |= _descendants(child)
    return found


@pytest.fixture(scope="module")  # once per session (only this module uses it), and stopped
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:  # before the rest
    ray = pytest.importorskip("ray")  # in the test extra and the lock: present on a fresh machine
    from ray import serve

    import bentolite
    from bentolite.config import build_config, get_config, set_config

    home = tmp_path_factory.mktemp("ray") / "home"  # the inference graph's tiny models
    save_models("inference_graph", home)
    # replicas inherit this process's environment; Ray's socket paths must stay short
    saved = {name: os.environ.get(name) for name in [*RAY_ENV, "BENTOLITE_HOME"]}
    os.environ.update(RAY_ENV, BENTOLITE_HOME=str(home))
    temp_dir = tempfile.mkdtemp(prefix="bl-ray-")
    before = _descendants(os.getpid())
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
             _temp_dir=temp_dir, log_to_driver=False)
    sys.path.insert(0, str(HERE))
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        from ray_svc import svc  # a Service object: replicas import it as ray_svc:svc

        previous = get_config()  # the driver's config travels to the replicas
        set_config(build_config({"api_server": {"metrics": {"namespace": "bento_on_ray"}}}))
        try:
            rows = bentolite.ray.deployment(
                svc, SMALL, {"rows": {"num_replicas": 2, **SMALL}}, enable_batching=True,
                batching_config={"rows": {"tag": {"max_batch_size": 64,
                                                  "batch_wait_timeout_s": 0.01}}})
        finally:
            set_config(previous)
        graph_svc = bentolite.load("service:svc", EXAMPLES / "inference_graph")
        graph = bentolite.ray.deployment(
            graph_svc, SMALL,
            {name: SMALL for name in ("gpt2-generation", "distilgpt2-generation",
                                      "gpt2-medium-generation",
                                      "bert-base-uncased-classification")})
        sys.modules.pop("service", None)  # the example's module name is a common one
        from bentolite.bentos import BentoBuildConfig, build

        build(BentoBuildConfig(service="ray_v2_svc:Shout", name="shout_graph",
                               include=["ray_v2_svc.py"]), HERE, version="v1")
        sys.modules.pop("ray_v2_svc", None)  # the driver too imports the bento's own copy
        shout = bentolite.ray.deployment("shout_graph:latest")  # 0.1 CPU each: its resources
        serve.run_many([serve.RunTarget(rows, name="rows", route_prefix="/rows"),
                        serve.RunTarget(graph, name="graph", route_prefix="/graph"),
                        serve.RunTarget(shout, name="shout", route_prefix="/shout")])
        yield Cluster(f"http://127.0.0.1:{port}", graph_svc)
    finally:
        ray_pids = _descendants(os.getpid()) - before  # the replicas started by now included
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            sys.path.remove(str(HERE))
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    deadline = time.monotonic() + 30
    while any(map(alive, ray_pids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    shutil.rmtree(temp_dir, ignore_errors=True)
    assert len(ray_pids) > 10, ray_pids  # gcs, raylet, agents, controller, proxy, replicas
    assert not [pid for pid in ray_pids if alive(pid)], "Ray processes left running"


def _tag(cluster: Cluster, caller: int, call: int) -> tuple[list[list[float]], list[list[float]]]:
    rows = [[float(caller), call + i / 4] for i in range(1 + (caller + call) % 3)]
    status, _, body = cluster.post("/rows/tag", json.dumps(rows).encode())
    assert status == 200, body
    return rows, json.loads(body)


def _rows_replicas(cluster: Cluster, pool: concurrent.futures.Executor) -> set[int]:
    """The PIDs of the ``rows`` replicas: rounds of 8 concurrent calls until two answered (at
    most 10, a moment apart). Ray's router sends calls to the replicas in its queue-length
    cache and adds another only once its probe answers in time, so on a busy box a round
    may reach one."""
    pids: set[int] = set()
    for _ in range(10):
        answers = pool.map(lambda _: cluster.post("/rows/pid", b'{"sleep_s": 0.3}'), range(8))
        pids |= {json.loads(body)["pid"] for _, _, body in answers}
        if len(pids) == 2:
            break
        time.sleep(0.5)
    return pids


def test_concurrent_callers_get_their_own_rows_from_batches(cluster: Cluster) -> None:
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: [_tag(cluster, i, c) for c in range(6)], range(32)))
        pids = _rows_replicas(cluster, pool)
    batch_sizes = []
    for calls in results:
        for sent, got in calls:
            assert [row[:2] for row in got] == sent  # each caller's own rows, in order
            assert len({row[2] for row in got}) == 1 and got[0][2] >= len(sent)
            batch_sizes.append(got[0][2])
    assert max(batch_sizes) > 3, batch_sizes  # rows of several callers shared a batch
    assert len(pids) == 2, pids  # both replicas served


def test_same_http_api_as_bentolite_serve(cluster: Cluster) -> None:
    status, headers, body = cluster.post("/rows/fail", b'{"kind": "input"}')
    assert status == 400 and json.loads(body) == {
        "error": "row 3 is negative", "type": "BadInput", "field": "rows"}
    assert headers["x-bentoml-request-id"]
    status, _, body = cluster.post("/rows/fail", b'{"kind": "boom"}')
    assert status == 500 and json.loads(body) == {
        "error": "runner 'rows' raised ValueError: model exploded on boom",
        "type": "RemoteException"}
    status, _, body = cluster.post("/rows/tag", b"[[1, 2, 3]]")  # the IO descriptor's check
    assert status == 400 and json.loads(body)["type"] == "BadInput"
    status, _, body = cluster.post("/rows/tag", b"not json")
    assert status == 400 and json.loads(body)["type"] == "BadInput"

    status, headers, body = cluster.post("/rows/spell", b"ray", "text/plain")
    assert (status, body, headers.get("transfer-encoding")) == (200, b"ray", "chunked")
    status, _, body = cluster.post("/rows/spell_list", b'"hi!"')  # error after two items
    assert status == 500 and json.loads(body) == {
        "error": "runner 'rows' raised ValueError: no letter '!'", "type": "RemoteException"}

    assert cluster.get("/rows/readyz")[0] == 200
    spec = json.loads(cluster.get("/rows/docs.json")[1])
    assert {"/tag", "/pid", "/fail", "/spell"} <= set(spec["paths"])
    status, metrics = cluster.get("/rows/metrics")
    assert status == 200
    assert b'bento_on_ray_request_total{endpoint="/fail"' in metrics  # the driver's config


def test_inference_graph_answers_like_bentolite_serve(cluster: Cluster) -> None:
    status, _, body = cluster.post("/graph/classify_generated_texts", SENTENCE.encode(),
                                   "text/plain", timeout_s=120)
    assert status == 200, body
    status, _, bad = cluster.post("/graph/classify_generated_texts", b"\xff\xfe", "text/plain")
    assert status == 400 and json.loads(bad)["type"] == "BadInput"
    answer = json.loads(body)
    assert len(answer) == 3, answer  # what test_examples checks of `bentolite serve`
    for item in answer:
        assert set(item) == {"generated", "score"} and item["generated"].startswith(SENTENCE)
    # generation samples; the classifier does not: each score is the classifier's own
    [classifier] = [r for r in cluster.graph_svc.runners if "classification" in r.name]
    classifier.init_local(quiet=True)
    try:
        for item in answer:
            assert item["score"] == pytest.approx(classifier.run(item["generated"])[0]["score"])
    finally:
        classifier.destroy()


def test_new_style_bento_answers_like_bentolite_serve(cluster: Cluster) -> None:
    """``Shout`` runs in the ingress, ``Words`` and ``Letters`` in deployments of their own;
    the bodies are what ``bentolite serve ray_v2_svc:Shout`` answers."""
    from ray import serve

    import ray_v2_svc
    from bentolite.services.engine import schema_json

    assert set(serve.status().applications["shout"].deployments) == {
        "bento-svc-shout", "bento-runner-words", "bento-runner-letters"}
    status, headers, body = cluster.post("/shout/shout", b'{"text": "hi there", "times": 2}')
    assert status == 200 and headers["x-bentoml-request-id"], body
    answer = json.loads(body)
    assert answer["text"] == "HI THERE HI THERE"
    assert len({answer["pid"], answer["words_pid"], os.getpid()}) == 3, answer

    status, _, body = cluster.post("/shout/shout", b'{"text": "hi there!"}')
    assert status == 500 and json.loads(body) == {  # raised two deployments away
        "error": "runner 'letters' raised ValueError: no letter '!' in 'there!'",
        "type": "RemoteException"}
    status, _, body = cluster.post("/shout/shout", b'{"text": "a\\u0001b"}')
    assert status == 400 and json.loads(body) == {
        "error": "the word is not printable", "type": "BadInput", "field": "word"}
    status, _, body = cluster.post("/shout/shout", b'{"text": "hi", "times": "x"}')
    assert status == 400 and json.loads(body)["field"] == "body.times", body
    status, schema = cluster.get("/shout/schema.json")
    assert status == 200 and json.loads(schema) == schema_json(ray_v2_svc.Shout.as_service())


def test_killed_replica_fails_only_its_calls_and_is_replaced(cluster: Cluster) -> None:
    def pid_call(sleep_s: float) -> tuple[int, Any]:
        status, _, body = cluster.post("/rows/pid", json.dumps({"sleep_s": sleep_s}).encode())
        return status, json.loads(body)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replicas = _rows_replicas(cluster, pool)
        assert len(replicas) == 2, replicas
        calls = [pool.submit(pid_call, 1.5) for _ in range(4)]
        time.sleep(0.5)  # each replica runs one call and has the next one queued
        victim = min(replicas)
        os.kill(victim, signal.SIGKILL)
        outcomes = [call.result() for call in calls]
    answered = [body["pid"] for status, body in outcomes if status == 200]
    failed = [body for status, body in outcomes if status != 200]
    assert answered and failed, outcomes  # calls were in both replicas
    assert set(answered) == replicas - {victim}
    for body in failed:  # the dead replica's calls, each a 503 naming the runner
        assert body["type"] == "ServiceUnavailable" and "runner 'rows'" in body["error"], body

    deadline = time.monotonic() + 90  # Ray's controller starts a replacement
    statuses = []
    while time.monotonic() < deadline:
        status, body = pid_call(0.0)
        statuses.append(status)
        if status == 200 and body["pid"] not in replicas:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no replacement replica in 90 s: {statuses}")
    assert set(statuses) == {200}, statuses  # calls after the kill went to live replicas


def test_options_from_the_runner_and_the_config_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cluster: what ``deployment`` derives and refuses before Ray sees anything."""
    pytest.importorskip("ray")
    monkeypatch.syspath_prepend(str(HERE))
    import ray_svc

    import bentolite
    from bentolite.ray import _limits, _runner_options

    runner = ray_svc.rows_runner
    runner.resource_config = {"cpu": 0.5, "nvidia.com/gpu": 0.25}
    try:
        options = _runner_options(runner, {"num_replicas": 3,
                                           "ray_actor_options": {"memory": 2**30}})
    finally:
        runner.resource_config = None
    assert options["num_replicas"] == 3
    assert options["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0.25, "memory": 2**30}
    assert options["max_ongoing_requests"] == runner.tag.limits.max_queue_size

    off = _limits(runner, False, None)  # BentoML 1.1: no batching on Ray unless asked
    assert not off["tag"].batchable and off["tag"].max_batch_size == runner.tag.limits.max_batch_size
    on = _limits(runner, True, {"tag": {"max_batch_size": 8, "batch_wait_timeout_s": 0.002}})
    assert on["tag"].batchable and on["tag"].max_batch_size == 8 and on["tag"].max_wait_ms == 2
    assert not on["pid"].batchable  # not a batchable method

    with pytest.raises(ValueError, match=r"batching_config\['rows'\]\['tag'\] has unknown keys"):
        _limits(runner, True, {"tag": {"batch_size": 8}})
    with pytest.raises(ValueError, match="runners_deployment_config_map names runners"):
        bentolite.ray.deployment(ray_svc.svc, None, {"nope": {}})
    with pytest.raises(ValueError, match="use serve.run"):
        bentolite.ray.deployment(ray_svc.svc, {"route_prefix": "/x"})
    with pytest.raises(ValueError, match="use max_ongoing_requests"):
        bentolite.ray.deployment(ray_svc.svc, None, {"rows": {"max_concurrent_queries": 9}})
    with pytest.raises(TypeError, match="needs a Service"):
        bentolite.ray.deployment(42)


def test_options_of_a_new_style_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """No cluster: a service class as the target; its services' config gives the defaults."""
    pytest.importorskip("ray")
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delitem(sys.modules, "ray_v2_svc", raising=False)  # not a bento's copy
    import ray_v2_svc

    import bentolite
    from bentolite.ray import _runner_options, _with_defaults, resolve_target

    target, service = resolve_target(ray_v2_svc.Shout)  # replicas import the class again
    assert (target.import_string, target.working_dir) == ("ray_v2_svc:Shout", str(HERE))
    assert [(r.name, r.embedded) for r in service.runners] == [
        ("letters", False), ("words", False), ("shout", True)]
    words = service.runners[1]
    monkeypatch.setitem(ray_v2_svc.Words.config, "workers", 3)
    options = _runner_options(words, {"ray_actor_options": {"num_gpus": 1}})
    assert options["num_replicas"] == 3
    assert options["ray_actor_options"] == {"num_cpus": 0.1, "num_gpus": 1}
    scaled = _runner_options(words, {"autoscaling_config": {"max_replicas": 4}})
    assert "num_replicas" not in scaled  # Ray takes one or the other
    monkeypatch.setitem(ray_v2_svc.Shout.config, "resources", {"cpu": "250m", "gpu": 0.5})
    assert _with_defaults(service.runners[2], {}) == {  # the root's, for the ingress
        "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.25, "num_gpus": 0.5}}

    # keys are the services' names; the root runs in the API server
    bentolite.ray.deployment(ray_v2_svc.Shout, None, {"Words": {"num_replicas": 2}},
                             batching_config={"Letters": {}})
    with pytest.raises(ValueError, match=r"names runners \['Shout'\].*service_deployment_config"):
        bentolite.ray.deployment(ray_v2_svc.Shout, None, {"Shout": {}})


def test_a_bento_target_carries_its_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """No cluster: a bento tag's replicas import its ``src/`` and load its ``models/``; the
    driver loads it so too, and its own environment is left as it was."""
    from bentolite.models.store import MODEL_STORE_ENV
    from bentolite.ray import resolve_target
    from tests.bentos.project import cli, make_project, ok, save_model

    home = tmp_path / "home"
    project = make_project(tmp_path / "project")
    save_model(project, home)
    ok(cli(home, "build", str(project), "--version", "v1"))
    shutil.rmtree(home / "models")  # only the bento has the model its service loads on import
    monkeypatch.setenv("BENTOLITE_HOME", str(home))
    monkeypatch.delenv(MODEL_STORE_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "service", raising=False)
    try:
        target, service = resolve_target("doubler_svc:v1")
    finally:
        sys.modules.pop("service", None)
        sys.modules.pop("mymodel", None)
    bento = home / "bentos" / "doubler_svc" / "v1"
    assert (target.import_string, target.working_dir) == ("service:svc", str(bento / "src"))
    assert target.model_store == str(bento / "models")
    assert service.name == "doubler_svc" and MODEL_STORE_ENV not in os.environ
    with pytest.raises(BentoMLException, match="nor a bento in the store"):
        resolve_target("doubler_svc:v2")

"""``bentolite serve`` in production mode: a supervisor, 2 API workers, a runner's workers.

Real processes on 127.0.0.1; every PID started is killed in clean-up if still alive.
"""
from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
from pathlib import Path

import pytest
from .prod_helpers import Command, alive, cmdline, free_port, wait_for

pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, env: dict[str, str]) -> Command:
    port = free_port()
    return Command(["serve", "prod_svc:svc", "--host", "127.0.0.1", "--port", str(port),
                    "--api-workers", "2", "--graceful-shutdown-timeout", "20",
                    "--working-dir", "."], tmp_path, env=env, port=port)


def _readyz(cmd: Command):  # noqa: ANN202
    try:
        return cmd.get("/readyz")
    except OSError:  # no API worker listening yet
        return None


def _metric_total(text: str, name: str, endpoint: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'endpoint="{endpoint}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_production_serving_lifecycle(tmp_path: Path) -> None:
    gate = tmp_path / "let-the-model-load"
    marks = tmp_path / "marks"
    marks.mkdir()
    cmd = _serve(tmp_path, {"PROD_SVC_INIT_GATE": str(gate), "PROD_SVC_MARK_DIR": str(marks)})
    try:
        # 1. While the runner loads, /readyz is 503 and names it.
        reply = wait_for(lambda: _readyz(cmd), "an API worker to answer", cmd)
        assert reply.status == 503, reply.body
        assert reply.json()["runners_not_ready"] == ["adder"]
        assert cmd.post_json("/add", [1]).status == 503  # APIs too, until the runner is up
        gate.touch()
        cmd.wait_ready()  # one worker of the runner is ready...
        # ...and the supervisor has seen every runner worker start (a worker that dies before
        # that is a start-up failure, not a crash to restart)
        wait_for(lambda: "bentolite.supervisor: serving prod_svc:svc" in cmd.log(),
              "the end of start-up", cmd)

        # 2. Requests succeed (concurrently, so the runner batches), on both API workers.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: cmd.post_json("/add", [i, i * 10]), range(24)))
        assert [r.json() for r in replies] == [[i + 1, i * 10 + 1] for i in range(24)]
        sent = 24
        while not all(f"[api:{i}] bentoml.access" in cmd.log() and "path=/add" in cmd.log()
                      for i in (0, 1)):
            assert sent < 300, "one API worker never got a request"
            assert cmd.post_json("/add", [sent]).json() == [sent + 1]
            sent += 1
        # /metrics sums both API workers' counters, whichever worker answers it.
        metrics = cmd.get("/metrics").body.decode()
        assert _metric_total(metrics, "bentoml_api_server_request_total", "/add") == sent + 1
        assert "bentoml_runner_adaptive_batch_size" in metrics  # the runner workers' too

        # 3. SIGKILL a runner worker during a bounded load: in-flight calls on it get a 503
        # naming the runner; it restarts (logged with the signal); later calls succeed.
        children = cmd.children()
        victim = cmd.post_json("/runner_pid", None).json()
        assert victim in children
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            naps = [pool.submit(cmd.post_json, "/runner_nap", 3.0) for _ in range(6)]
            wait_for(lambda: any(marks.glob(f"nap-{victim}-*")), "a nap on the victim", cmd)
            os.kill(victim, signal.SIGKILL)
            results = [f.result(timeout=60) for f in naps]
        statuses = sorted(r.status for r in results)
        assert set(statuses) <= {200, 503}, statuses
        failed = [r.json() for r in results if r.status == 503]
        assert failed, "no call was in flight on the killed worker"
        assert all("adder" in body["error"] for body in failed), failed
        assert any("disconnected" in body["error"] for body in failed), failed
        wait_for(lambda: re.search(rf"runner:adder:\d \(pid {victim}\) exited with signal SIGKILL",
                                cmd.log()), "the crash log line", cmd)
        wait_for(lambda: "restarting runner:adder" in cmd.log(), "the restart", cmd)
        wait_for(lambda: cmd.get("/readyz").status == 200, "readiness after the crash", cmd)
        for i in range(6):  # later calls succeed (the restarted worker is reconnected)
            reply = wait_for(lambda: (r := cmd.post_json("/add", [i])).status == 200 and r,
                          "a call after the restart", cmd)
            assert reply.json() == [i + 1]
        assert not alive(victim)

        # 4. SIGKILL an API worker: it restarts (logged) and serves again; the other serves
        # meanwhile.
        api_victim = cmd.post_json("/slow", 0).json()["api_worker_pid"]
        assert api_victim in cmd.children()
        os.kill(api_victim, signal.SIGKILL)
        wait_for(lambda: re.search(rf"api:\d \(pid {api_victim}\) exited with signal SIGKILL",
                                cmd.log()), "the API worker crash log line", cmd)
        assert cmd.post_json("/add", [5]).json() == [6]
        wait_for(lambda: len(cmd.children() - {api_victim}) == 4, "the API worker restart", cmd)
        new_api = {p for p in cmd.children() if p not in children and p != api_victim}
        assert len(new_api) == 2, new_api  # the restarted runner worker and API worker
        # the restarted API worker takes connections once its runner is connected
        wait_for(lambda: cmd.log().count("Serving 'prod_svc'") == 3, "the new API worker", cmd)
        wait_for(lambda: cmd.post_json("/slow", 0).json()["api_worker_pid"] in new_api,
              "a request served by the restarted API worker", cmd)
        pids = cmd.children()
        assert len(pids) == 4, pids  # 2 API workers + 2 runner workers (2 CPUs)

        # 5. SIGTERM with requests in flight: they complete; every child exits; run dir gone.
        run_dirs = set(re.findall(r"ready on (/\S+?)/runners/", cmd.log()))
        assert len(run_dirs) == 1 and all(Path(d).is_dir() for d in run_dirs), run_dirs
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            slow = [pool.submit(cmd.post_json, "/slow", 2.0) for _ in range(4)]
            wait_for(lambda: _metric_total(cmd.get("/metrics").body.decode(),
                                        "bentoml_api_server_request_in_progress", "/slow") >= 4,
                  "the slow requests to be in flight", cmd)
            code = cmd.terminate()
            answers = [f.result(timeout=60) for f in slow]
        assert [a.status for a in answers] == [200] * 4, [a.body for a in answers]
        assert code == 0, cmd.log()[-4000:]
        assert not [pid for pid in pids if alive(pid)]
        assert not any(Path(d).exists() for d in run_dirs)
    finally:
        cmd.close()


@pytest.mark.parametrize(("env", "expected"), [
    ({"PROD_SVC_FAIL_INIT": "1"},  # a runnable's __init__ raises in its runner worker
     ["Traceback (most recent call last)",
      "RuntimeError: PROD_SVC_FAIL_INIT is set: this model refuses to load"]),
    ({"PROD_SVC_FAIL_STARTUP": "1"},  # an API worker's on_startup hook raises
     ["PROD_SVC_FAIL_STARTUP is set", "API worker api:", "failed to start"]),
    ({"PROD_SVC_FAIL_IMPORT": "1"},  # the service module raises at import
     ["loading the service failed", "Traceback (most recent call last)", "prod_svc.py",
      "ZeroDivisionError: PROD_SVC_FAIL_IMPORT is set"]),
], ids=["runnable-init", "api-startup", "service-import"])
def test_start_up_failure_fails_fast(tmp_path: Path, env: dict[str, str],
                                     expected: list[str]) -> None:
    cmd = _serve(tmp_path, env)
    try:
        code = cmd.wait_exit()
        log = cmd.log()
        assert code != 0, log
        assert "start-up failed" in log
        assert [line for line in expected if line not in log] == [], log[-3000:]
        if "PROD_SVC_FAIL_IMPORT" not in env:  # the import fails before any child starts
            assert cmd.seen_pids, "no child process was seen"
        assert not [pid for pid in cmd.seen_pids if alive(pid)]
    finally:
        cmd.close()


@pytest.mark.parametrize("target", ["prod_svc.py", "prod_svc", "prod_svc.py:svc"])
def test_every_target_form_serves_its_runners(tmp_path: Path, target: str) -> None:
    port = free_port()
    cmd = Command(["serve", target, "--host", "127.0.0.1", "--port", str(port),
                   "--api-workers", "1", "--working-dir", "."], tmp_path, port=port)
    try:
        cmd.wait_ready()  # the runner workers found their runner through the same target
        assert cmd.post_json("/add", [1, 2]).json() == [2, 3]
    finally:
        cmd.close()


def test_a_runner_stream_reaches_the_client_as_it_is_made(tmp_path: Path) -> None:
    import http.client

    port = free_port()
    cmd = Command(["serve", "prod_svc:svc", "--host", "127.0.0.1", "--port", str(port),
                   "--api-workers", "1", "--working-dir", "."], tmp_path, port=port)
    try:
        cmd.wait_ready()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/spell", body=b"bento", headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == b"b.e.n.t.o."
        conn.close()
    finally:
        cmd.close()


def test_the_supervisor_never_imports_the_service(tmp_path: Path) -> None:
    marks = tmp_path / "imports"
    marks.mkdir()
    cmd = _serve(tmp_path, {"PROD_SVC_IMPORT_MARKS": str(marks)})
    try:
        cmd.wait_ready()

        def importers() -> set[int]:
            return {int(p.name.split("-")[1]) for p in marks.iterdir()}

        children = cmd.children()
        assert len(children) == 4, children
        # every API and runner worker imports it (the second API worker may still be at it)...
        wait_for(lambda: children <= importers(), "every worker to import the service", cmd)
        assert cmd.process.pid not in importers(), "the service was imported in the supervisor"
        planners = importers() - children  # ...and one short-lived child that listed the runners
        assert len(planners) == 1 and not any(alive(p) for p in planners), planners
        assert cmd.post_json("/add", [1]).json() == [2]
    finally:
        cmd.close()


_DUMP_MODULES = """
import os, signal, sys
def _dump(*_):
    path = os.path.join(os.environ["DUMP_MODULES_DIR"], str(os.getpid()))
    with open(path + ".part", "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
    os.rename(path + ".part", path)  # appears whole
signal.signal(signal.SIGUSR1, _dump)
"""


def test_the_supervisor_stays_small(tmp_path: Path) -> None:
    """Neither the runner client nor the worker code loads in the long-lived supervisor (each
    costs it megabytes of memory): it asks a worker if it is ready through the protocol alone."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_DUMP_MODULES)  # SIGUSR1: write sys.modules
    dumps = tmp_path / "modules"
    dumps.mkdir()
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    cmd = _serve(tmp_path, {"PYTHONPATH": path, "DUMP_MODULES_DIR": str(dumps)})
    try:
        cmd.wait_ready()
        cmd.process.send_signal(signal.SIGUSR1)
        dump = dumps / str(cmd.process.pid)
        wait_for(dump.exists, "the supervisor to list its modules", cmd)
        loaded = set(dump.read_text().split())
        assert "bentolite.server.supervisor" in loaded and "bentolite.runner.protocol" in loaded
        heavy = {"bentolite.runner.worker", "bentolite.runner.remote", "bentolite.runner.batching",
                 "bentolite.services.loader", "numpy", "aiohttp", "prod_svc"}
        assert not heavy & loaded, heavy & loaded
    finally:
        cmd.close()


def test_children_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    cmd = _serve(tmp_path, {})
    try:
        cmd.wait_ready()
        pids = cmd.children()
        assert len(pids) == 4, pids
        cmd.process.kill()  # no chance to clean up: the children must notice by themselves
        cmd.process.wait(timeout=10)
        deadline = time.monotonic() + 60
        while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {pid: cmdline(pid)[:300] for pid in pids if alive(pid)}
        assert not left, f"{left}\n{cmd.log()[-3000:]}"
    finally:
        cmd.close()

"""Worker processes keep freed large buffers instead of faulting them back in per request."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.prod_helpers import Command, children, free_port

#: frees three 900 KB buffers per round, like an API worker handling a 900 KB image
_ROUNDS = textwrap.dedent("""
    import resource, sys
    from bentolite.allocator import tune_allocator
    tuned = tune_allocator() if sys.argv[1] == "tune" else False
    def one():
        a = bytes(bytearray(900_000)); b = a + b"x"; c = b + b"y"
        return len(c)
    one()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        one()
    print(tuned, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 100)
""")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    return {**env, **extra}


def _faults_per_round(mode: str, **env: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", _ROUNDS, mode], env=_clean_env(**env),
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], float(out[1])


def test_a_tuned_process_reuses_freed_large_buffers() -> None:
    untuned, faults_untuned = _faults_per_round("plain")
    tuned, faults_tuned = _faults_per_round("tune")
    assert (untuned, tuned) == ("False", "True")
    assert faults_untuned > 200  # glibc's own rule: every round faults ~220 pages per buffer in
    assert faults_tuned < 10


def test_the_users_own_malloc_settings_are_left_alone() -> None:
    for env in ({"MALLOC_TRIM_THRESHOLD_": "1048576"},
                {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"}):
        tuned, faults = _faults_per_round("tune", **env)
        assert tuned == "False", env
        assert faults > 200, env  # glibc's rule stands as the user set it


_SERVICE = '''
import numpy as np
import bentolite as bentoml


class Mean(bentoml.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    @bentoml.Runnable.method(batchable=False)
    def mean(self, array):
        return float(array.mean())


runner = bentoml.Runner(Mean, name="mean")
svc = bentoml.Service("big_bodies", runners=[runner])


@svc.api(input=bentoml.io.File(mime_type="application/octet-stream"), output=bentoml.io.JSON())
async def mean(body):
    array = np.frombuffer(body.read(), dtype=np.float32)
    return {"mean": await runner.mean.async_run(array)}
'''


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


@pytest.mark.parametrize("mode", ["--production", "--development"])
def test_serving_processes_take_almost_no_page_faults_per_large_request(
        mode: str, tmp_path: Path) -> None:
    (tmp_path / "big_svc.py").write_text(_SERVICE)
    body = np.arange(300_000, dtype=np.float32).tobytes()  # 1.2 MB
    port = free_port()
    server = Command(["serve", "big_svc:svc", mode, "--host", "127.0.0.1",
                      "--port", str(port), "--working-dir", str(tmp_path)], tmp_path, port=port)
    try:
        server.wait_ready()
        processes = {server.process.pid}  # the supervisor, or development's one process
        for pid in server.children():
            processes |= {pid, *children(pid)}
        headers = {"Content-Type": "application/octet-stream"}
        for _ in range(5):  # warm-up: imports, first buffers
            assert server.request("POST", "/mean", body, headers)[0] == 200
        before = {pid: _minor_faults(pid) for pid in processes}
        for _ in range(40):
            status, answer = server.request("POST", "/mean", body, headers)
            assert status == 200, answer
        per_request = {pid: (_minor_faults(pid) - before[pid]) / 40 for pid in processes}
        # untuned, the process reading the body takes ~600 faults per request (1.2 MB buffers)
        assert max(per_request.values()) < 60, per_request
    finally:
        server.close()

"""CPU per request of each bentolite server process under closed-loop load (one scenario).

Serves a ``bench/services`` scenario in production mode (one API worker, ``bench/config.yaml``
unless ``--config``), warms it up, then drives ``--concurrency`` clients for ``--seconds`` and
prints requests/s, p50/p99, the mean adaptive batch size and, per process, CPU microseconds
and minor page faults per request (from /proc; the load generator's own from getrusage).
Steadier than req/s on a shared box, and it says which process a change made cheaper.

    bench/run.sh is the comparison; this one is for profiling bentolite alone:
    PYTHONPATH=. python bench/cpu_per_request.py batching --concurrency 64 --seconds 6
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import BLAS_THREADS_ENV, CONFIG_PATH, REPO_ROOT, SCENARIOS, SERVICES_DIR  # noqa: E402
from loadgen import run_load_sync  # noqa: E402
from procs import ServerProcess, cpu_s, descendants, free_port, minor_faults  # noqa: E402


def _threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of ``pid``: its main thread (the event loop) and the others
    by thread id (Python does not name OS threads)."""
    out: dict[str, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended meanwhile
        return out
    for task in tasks:
        name = "main" if task.name == str(pid) else task.name
        try:
            out[name] = out.get(name, 0.0) + cpu_s(pid, f"task/{task.name}/stat")
        except OSError:  # the thread ended meanwhile
            continue
    return out


def _role(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    for marker, role in (("runner.worker", "runner worker"), ("api_worker", "API worker")):
        if marker in cmdline:
            return role
    return "supervisor"


def _mean_batch(port: int) -> float | None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    total = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for key in total:
            if line.startswith(f"bentoml_runner_adaptive_batch_size_{key}"):
                total[key] += float(line.rsplit(" ", 1)[1])
    return total["sum"] / total["count"] if total["count"] else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--config", default=str(CONFIG_PATH))
    parser.add_argument("--py-spy", metavar="DIR",
                        help="also sample each server process with py-spy (on PATH) during "
                             "the measured window: DIR/<role>.txt, collapsed stacks")
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]
    home = tempfile.mkdtemp(prefix="bentolite-cpu-")
    env = dict(os.environ, **BLAS_THREADS_ENV, BENCH_IMPL="bentolite", BENTOLITE_HOME=home,
               BENTOLITE_CONFIG=os.path.abspath(args.config), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    if scenario.needs_models:
        subprocess.run([sys.executable, "save_models.py"], cwd=SERVICES_DIR, env=env, check=True,
                       capture_output=True)
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-c", "from bentolite.cli import main; main()", "serve",
         scenario.target, "--production",
         "--api-workers", "1", "--host", "127.0.0.1", "--port", str(port),
         "--working-dir", str(SERVICES_DIR)],
        env=env, cwd=SERVICES_DIR, log_path=Path(home) / "server.log", port=port)
    server.start()
    try:
        server.wait_ready()
        url = f"http://127.0.0.1:{port}{scenario.route}"
        load = dict(content_type=scenario.content_type, concurrency=args.concurrency)
        run_load_sync(url, scenario.body, duration_s=args.warmup_s, warmup_s=0, **load)
        pids = [server.pid, *descendants(server.pid)]
        before = {pid: cpu_s(pid) for pid in pids}
        faults_before = {pid: minor_faults(pid) for pid in pids}
        threads_before = {pid: _threads_cpu_s(pid) for pid in pids}
        spies = _start_py_spy(args.py_spy, pids[1:], args.seconds) if args.py_spy else []
        own = os.times()
        result = run_load_sync(url, scenario.body, duration_s=args.seconds, **load)
        own_after = os.times()
        for spy in spies:
            spy.wait()
        after = {pid: cpu_s(pid) for pid in pids}
        faults_after = {pid: minor_faults(pid) for pid in pids}
        threads_after = {pid: _threads_cpu_s(pid) for pid in pids}
        done = max(result.requests, 1)
        print(f"{args.scenario} c={args.concurrency}: {result.requests_per_s:,.0f} req/s, "
              f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
              f"errors {result.error_count}, mean batch {_mean_batch(port) or 0:.1f}")
        for pid in pids:
            faults = (faults_after[pid] - faults_before[pid]) / done
            print(f"  {(after[pid] - before[pid]) / done * 1e6:7.1f} us/request  {_role(pid)}"
                  f" ({faults:.0f} page faults/request)")
            for name, cpu in sorted(threads_after[pid].items()):
                spent = (cpu - threads_before[pid].get(name, 0.0)) / done * 1e6
                if spent >= 1.0:
                    print(f"      {spent:7.1f} us/request  thread {name}")
        generator = (own_after.user + own_after.system) - (own.user + own.system)
        print(f"  {generator / done * 1e6:7.1f} us/request  load generator")
    finally:
        server.stop()


#: more py-spy options, e.g. ["--native"] for C frames (BENCH_PY_SPY_OPTIONS="--native")
PY_SPY_OPTIONS = os.environ.get("BENCH_PY_SPY_OPTIONS", "").split()


def _start_py_spy(out_dir: str, pids: list[int], seconds: float) -> list[subprocess.Popen]:
    os.makedirs(out_dir, exist_ok=True)
    return [subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(max(int(seconds), 1)),
         "--rate", "200", "--nonblocking", "--format", "raw", *PY_SPY_OPTIONS,
         "--output", os.path.join(out_dir, f"{_role(pid).replace(' ', '_')}-{pid}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


if __name__ == "__main__":
    main()

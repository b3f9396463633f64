"""The batching scenario on ``bentolite serve``, split servers and one-node Ray Serve, one box.

    source scripts/_venv.sh && python bench/ray_serve.py [--duration-s 6] [-c 8,32,64]

``bentolite serve`` runs as in compare.py (one API worker, one runner worker); the split
deployment runs ``start-runner-server`` + ``start-http-server`` (a TCP hop); Ray runs
``bentolite.ray.deployment`` of the same service (one ingress and one runner replica, batching
on) on a local cluster bound to 127.0.0.1. The same closed-loop client drives both. Also
times the ingress's relay hop alone (Serve's HTTP request -> our aiohttp app on a Unix socket)
so its share of the Ray figure is known. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import (  # noqa: E402
    CONFIG_PATH, SCENARIOS, SERVICES_DIR, _bentolite_impl, _log, _parse_concurrency, _save_models,
    build_parser,
    run_once,
)
from loadgen import run_load_sync  # noqa: E402
from procs import ServerProcess, free_port  # noqa: E402

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0"}
SMALL = {"ray_actor_options": {"num_cpus": 0.1}}


def run_split(impl, levels: list[int], args: argparse.Namespace, logs: Path) -> dict[int, dict]:
    """``start-runner-server`` + ``start-http-server --remote-runner`` (TCP hop) on this box."""
    scenario = SCENARIOS["batching"]
    config = logs / "split.yaml"
    config.write_text(CONFIG_PATH.read_text() + "  auth_token: bench-split-secret\n")
    env = {**impl.env, "BENTOLITE_CONFIG": str(config)}
    common = ["--host", "127.0.0.1", "--working-dir", str(SERVICES_DIR)]
    runner_port, api_port = free_port(), free_port()
    servers = [
        ServerProcess([*impl.serve_argv, "start-runner-server", "batching:svc", "--runner-name",
                       "batch_model", "--port", str(runner_port), *common],
                      env=env, cwd=SERVICES_DIR, log_path=logs / "split-runner.log",
                      port=runner_port),
        ServerProcess([*impl.serve_argv, "start-http-server", "batching:svc", "--remote-runner",
                       f"batch_model=tcp://127.0.0.1:{runner_port}", "--api-workers", "1",
                       "--port", str(api_port), *common],
                      env=env, cwd=SERVICES_DIR, log_path=logs / "split-api.log", port=api_port),
    ]
    try:
        for server in servers:
            server.start()
            server.wait_ready(timeout_s=120)
        url = f"http://127.0.0.1:{api_port}{scenario.route}"
        options = {"content_type": scenario.content_type}
        run_load_sync(url, scenario.body, concurrency=max(levels),
                      duration_s=args.server_warmup_s, warmup_s=0, **options)
        loads = {}
        for concurrency in levels:
            loads[concurrency] = run_load_sync(url, scenario.body, concurrency=concurrency,
                                               duration_s=args.duration_s,
                                               warmup_s=args.warmup_s, **options)
            _log(f"  split     c={concurrency:<3d} {loads[concurrency]['requests_per_s']:8.1f} "
                 f"req/s p99 {loads[concurrency]['p99_ms']:.1f} ms "
                 f"errors {loads[concurrency]['error_count']}")
        return loads
    finally:
        for server in reversed(servers):
            server.stop(grace_s=10)


def run_ray(levels: list[int], duration_s: float, warmup_s: float,
            server_warmup_s: float) -> tuple[float, dict[int, dict]]:
    """Cold start (ray.init to the application running) and one load result per level."""
    scenario = SCENARIOS["batching"]
    started = time.perf_counter()
    import ray
    from ray import serve

    import bentolite

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
             _temp_dir=tempfile.mkdtemp(prefix="bl-ray-"), log_to_driver=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = bentolite.ray.deployment(bentolite.load("batching:svc", SERVICES_DIR), SMALL,
                                       {"batch_model": SMALL}, enable_batching=True)
        serve.run(app, name="batching", route_prefix="/")
        cold_start_s = time.perf_counter() - started
        url = f"http://127.0.0.1:{port}{scenario.route}"
        options = {"content_type": scenario.content_type}
        run_load_sync(url, scenario.body, concurrency=max(levels), duration_s=server_warmup_s,
                      warmup_s=0, **options)
        loads = {}
        for concurrency in levels:
            loads[concurrency] = run_load_sync(url, scenario.body, concurrency=concurrency,
                                               duration_s=duration_s, warmup_s=warmup_s,
                                               **options)
            _log(f"  ray       c={concurrency:<3d} {loads[concurrency]['requests_per_s']:8.1f} "
                 f"req/s p99 {loads[concurrency]['p99_ms']:.1f} ms "
                 f"errors {loads[concurrency]['error_count']}")
        return cold_start_s, loads
    finally:
        serve.shutdown()
        ray.shutdown()


async def relay_cost_ms(calls: int = 2000) -> float:
    """Mean wall time of one request relayed as the ingress does it (aiohttp client over a
    Unix socket to an aiohttp app, both in this loop): the relay's own cost per request."""
    import aiohttp
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/predict", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "api.sock")
        await web.UnixSite(runner, path).start()
        body = SCENARIOS["batching"].body
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path)) as session:
            for _ in range(200):  # warm up
                async with session.post("http://bentolite/predict", data=body) as r:
                    await r.read()
            started = time.perf_counter()
            for _ in range(calls):
                async with session.post("http://bentolite/predict", data=body) as r:
                    await r.read()
            elapsed = time.perf_counter() - started
    await runner.cleanup()
    return elapsed / calls * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--concurrency", default="8,32,64")
    parser.add_argument("--duration-s", type=float, default=6.0)
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--server-warmup-s", type=float, default=3.0)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    work_dir = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    impl = _bentolite_impl(work_dir, None)
    _save_models(impl)
    compare_args = build_parser().parse_args([
        "--duration-s", str(args.duration_s), "--warmup-s", str(args.warmup_s),
        "--server-warmup-s", str(args.server_warmup_s),
        "--concurrency", f"batching={args.concurrency}"])
    compare_args.concurrency = _parse_concurrency(compare_args.concurrency)
    logs = work_dir / "logs"
    logs.mkdir()
    served = run_once(impl, "batching", SCENARIOS["batching"], 0, compare_args, logs)
    split = run_split(impl, levels, args, logs)

    # the Ray replicas inherit this process's environment (the models' home, the config)
    os.environ.update(RAY_ENV, BENTOLITE_HOME=impl.env["BENTOLITE_HOME"],
                      BENTOLITE_CONFIG=str(CONFIG_PATH), BENCH_IMPL="bentolite")
    ray_cold_s, ray_loads = run_ray(levels, args.duration_s, args.warmup_s,
                                    args.server_warmup_s)
    relay_ms = asyncio.run(relay_cost_ms())

    print("| concurrency | `bentolite serve` req/s, p99 ms | split runner/API servers | "
          "Ray Serve, one node |")
    print("|---|---|---|---|")
    for c in levels:
        cells = [f"{r[c]['requests_per_s']:.0f}, {r[c]['p99_ms']:.1f}"
                 for r in (served.loads, split, ray_loads)]
        print(f"| {c} | " + " | ".join(cells) + " |")
    print(f"\ncold start to ready: bentolite serve {served.cold_start_s:.1f} s, "
          f"Ray (ray.init + serve.run) {ray_cold_s:.1f} s; errors: "
          f"{sum(r['error_count'] for r in ray_loads.values())} on Ray; "
          f"ingress relay hop alone: {relay_ms:.2f} ms per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())

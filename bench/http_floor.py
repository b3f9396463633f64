"""The floor under a payload scenario: a bare aiohttp server on uvloop that reads the body and
answers a few bytes of JSON (no service, no runner, no middleware), under the same load.

What any aiohttp-based server pays for the body's HTTP alone on this box; the rest of a
bentolite request is its own. Prints req/s, p50 and the server's CPU per request per level.

    PYTHONPATH=. python bench/http_floor.py tensor_bin --concurrency 1,8 --seconds 5
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import SCENARIOS  # noqa: E402
from loadgen import run_load_sync  # noqa: E402
from procs import ServerProcess, cpu_s, free_port  # noqa: E402

_SERVER = textwrap.dedent("""
    import sys
    import uvloop
    from aiohttp import web

    async def handle(request):
        body = await request.read()
        return web.Response(body=b'{"bytes": %d}' % len(body), content_type="application/json")

    async def ready(request):
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post(sys.argv[2], handle)
    app.router.add_get("/readyz", ready)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup-s", type=float, default=1.0)
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bentolite-http-floor-{port}.log"
    server = ServerProcess([sys.executable, "-c", _SERVER, str(port), scenario.route],
                           env=dict(os.environ), cwd=Path.cwd(), log_path=log, port=port)
    server.start()
    try:
        server.wait_ready()
        url = f"http://127.0.0.1:{port}{scenario.route}"
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            load = dict(content_type=scenario.content_type, concurrency=concurrency)
            run_load_sync(url, scenario.body, duration_s=args.warmup_s, warmup_s=0, **load)
            before = cpu_s(server.pid)
            result = run_load_sync(url, scenario.body, duration_s=args.seconds, warmup_s=0, **load)
            spent = (cpu_s(server.pid) - before) / max(result.requests, 1)
            print(f"{args.scenario} bare aiohttp c={concurrency}: {result.requests_per_s:,.0f} req/s, "
                  f"p50 {result.p50_ms:.2f} ms, server CPU {spent * 1e6:.0f} us/request, "
                  f"errors {result.error_count}")
    finally:
        server.stop()
        log.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

"""Benchmark bentolite against BentoML on the same services and configuration.

v1 scenarios (``bentoml.Service`` + runners) run on BentoML 1.1.11 (``bentoml``) and
bentolite; new-style ones (``@bentoml.service`` classes, ``v2_*``) on BentoML 1.4.39
(``bentoml14``) and bentolite. For each scenario, each round and each of its implementations
(alternating which goes first), it starts ``<impl> serve <target>`` with one API worker on
127.0.0.1, times launch to ``/readyz`` 200, sums the RSS of the server's process tree, checks
one response, drives closed-loop load at each concurrency, and stops the server (SIGTERM,
then SIGKILL by PID). Prints a markdown report (medians over rounds; ratio = bentolite /
BentoML, and bentolite's new-style path / its v1 path on the same work).

    bench/run.sh                       # everything, every implementation
    bench/run.sh --impl bentoml --scenario echo --duration-s 3 --rounds 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import run_load_sync  # noqa: E402
from procs import (  # noqa: E402
    ServerProcess, become_subreaper, free_port, tree_cpu_s, tree_io_bytes)
from report import format_value, render_report  # noqa: E402

__all__ = ["SCENARIOS", "Scenario", "main", "plan"]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SERVICES_DIR = BENCH_DIR / "services"
CONFIG_PATH = BENCH_DIR / "config.yaml"
#: implementation -> the peer venv (requirements/peers/NAME.txt) it runs in; bentolite runs here
PEERS = {"bentoml": "bentoml-1.1.11", "bentoml14": "bentoml-1.4.39", "litserve": "litserve-0.2.19"}
IMPLS = (*PEERS, "bentolite")
V1_IMPLS = ("bentoml", "bentolite")
V2_IMPLS = ("bentoml14", "bentolite")
_ROW = ",".join(["0.5"] * 64)


def _check_json_list(length: int) -> Callable[[bytes], bool]:
    def check(body: bytes) -> bool:
        value = json.loads(body)
        return isinstance(value, list) and len(value) == length

    return check


def _jpeg_640x480() -> bytes:
    """A photo-like 640x480 JPEG (smooth gradients plus noise; about 100 KB at quality 90)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    rgb = np.stack([x * 255 / 640, y * 255 / 480, (x + y) * 255 / 1120], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _tensor() -> Any:
    import numpy as np

    return np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)


def _check_json_key(key: str, value: Any) -> Callable[[bytes], bool]:
    def check(body: bytes) -> bool:
        answer = json.loads(body)
        return isinstance(answer, dict) and answer.get(key) == value

    return check


@dataclass(frozen=True)
class Scenario:
    """One service under load: what to serve, what to POST where, how to check the answer."""

    target: str  # what ``serve`` takes: module:svc (v1) or module:ClassName (new style)
    route: str
    body: bytes
    content_type: str
    concurrencies: tuple[int, ...]
    check_response: Callable[[bytes], bool]
    expected_body: bytes | None = None  # compared on every request during load when set
    needs_models: bool = False
    description: str = ""
    impls: tuple[str, ...] = V1_IMPLS  # the implementations it runs on; the first is the baseline
    same_work_as: str | None = None  # the v1 scenario doing the same work (new-style ones)
    #: a script serving the scenario on LitServe (``python SCRIPT PORT``), when it runs there
    litserve_script: str | None = None

    @property
    def baseline(self) -> str:
        return self.impls[0]


def _payload_scenario(route: str, body: bytes, content_type: str,
                      check: Callable[[bytes], bool], description: str) -> Scenario:
    """A large-payload scenario of ``services/payloads.py`` (v1, against BentoML 1.1.11)."""
    return Scenario(target="payloads:svc", route=route, body=body, content_type=content_type,
                    concurrencies=(1, 8), check_response=check, description=description)


SCENARIOS: dict[str, Scenario] = {
    "echo": Scenario(
        target="echo:svc",
        route="/echo",
        body=b"hello bentolite",
        content_type="text/plain",
        concurrencies=(1, 16),
        check_response=lambda body: body == b"hello bentolite",
        expected_body=b"hello bentolite",
        description="Text -> Text API, no runner",
    ),
    "echo_runner": Scenario(
        target="echo_runner:svc",
        route="/echo",
        body=b"hello bentolite",
        content_type="text/plain",
        concurrencies=(1, 16),
        check_response=lambda body: body == b"hello bentolite",
        expected_body=b"hello bentolite",
        description="Text -> Text API through a trivial (non-batchable) runner, one runner worker",
    ),
    "batching": Scenario(
        target="batching:svc",
        route="/predict",
        body=f"[[{_ROW}]]".encode(),
        content_type="application/json",
        concurrencies=(1, 8, 32, 64),
        check_response=_check_json_list(1),
        needs_models=True,
        description="NumpyNdarray 1x64 float32 JSON -> batchable numpy model (~5 ms + 0.1 ms/row)",
    ),
    "image": _payload_scenario(
        "/resize", _jpeg_640x480(), "image/jpeg", _check_json_key("size", [224, 224]),
        "a 640x480 JPEG through Image() to a runner that resizes it to 224x224 and returns JSON",
    ),
    "tensor_json": _payload_scenario(
        "/tensor_json", json.dumps(_tensor().tolist()).encode(), "application/json",
        _check_json_key("shape", [1, 3, 224, 224]),
        "a 1x3x224x224 float32 tensor as JSON (3 MB) through NumpyNdarray to a runner that "
        "returns its per-channel means",
    ),
    "tensor_bin": _payload_scenario(
        "/tensor_bin", _tensor().tobytes(), "application/octet-stream",
        _check_json_key("shape", [1, 3, 224, 224]),
        "the same tensor as raw float32 bytes (602 KB) through File() (np.frombuffer in the "
        "API) to the runner",
    ),
    "graph": Scenario(
        target="graph:svc",
        route="/classify_generated_texts",
        body=b"I have an idea!",
        content_type="text/plain",
        concurrencies=(1, 8),
        check_response=_check_json_list(2),
        description="inference graph: 2 tiny generators in parallel, then a classifier per text",
    ),
    "v2_echo": Scenario(
        target="v2_echo:Echo",
        route="/echo",
        body=b'{"text": "hello bentolite"}',
        content_type="application/json",
        concurrencies=(1, 16),
        check_response=lambda body: body == b"hello bentolite",
        expected_body=b"hello bentolite",
        description="new style: `def echo(self, text: str) -> str`, no dependency",
        impls=V2_IMPLS,
        same_work_as="echo",
    ),
    "v2_batching": Scenario(
        target="v2_batching:BatchedModel",
        route="/predict",
        body=f'{{"rows": [[{_ROW}]]}}'.encode(),
        content_type="application/json",
        concurrencies=(1, 8, 32, 64),
        check_response=_check_json_list(1),
        description="new style: batchable API (max_batch_size=64) on the root service, "
        "List[List[float]] 1x64 -> numpy model (~5 ms + 0.1 ms/row)",
        impls=V2_IMPLS,
        same_work_as="batching",
    ),
    "v2_graph": Scenario(
        target="v2_graph:InferenceGraph",
        route="/classify_generated_texts",
        body=b'{"original_sentence": "I have an idea!"}',
        content_type="application/json",
        concurrencies=(1, 8),
        check_response=_check_json_list(2),
        description="new style: 2 generator services in parallel (asyncio.gather over "
        "depends().to_async), then a classifier service per text",
        impls=V2_IMPLS,
        same_work_as="graph",
    ),
}
#: the batching scenario's work, against LitServe
SCENARIOS["ls_batching"] = dataclasses.replace(
    SCENARIOS["batching"],
    description="the batching scenario against LitServe 0.2.19 (a LitAPI with batch/unbatch, "
    "max_batch_size=64, its default batch_timeout 0, one uvicorn API server, one model worker)",
    impls=("litserve", "bentolite"),
    litserve_script="litserve_batching.py",
)


@dataclass
class RunRecord:
    """Measurements from one server launch."""

    impl: str
    round_index: int
    cold_start_s: float
    rss_ready_kb: int
    processes_ready: int
    rss_after_load_kb: int = 0
    loads: dict[int, dict[str, Any]] = field(default_factory=dict)
    killed_pids: list[int] = field(default_factory=list)
    server_warmup: dict[str, Any] = field(default_factory=dict)
    stop_s: float = 0.0


class Impl:
    """How to save models for and serve one implementation."""

    def __init__(
        self, name: str, python: str, serve_argv: list[str], env: dict[str, str],
        worker_options: tuple[str, ...] = ("--production", "--api-workers", "1"),
        stop_signal: signal.Signals = signal.SIGTERM,
    ):
        self.name = name
        self.stop_signal = stop_signal  # its graceful stop (LitServe's is SIGINT)
        self.python = python
        self.serve_argv = serve_argv
        self.env = env
        self.worker_options = worker_options  # serve options for one API worker


def _peer_venv(name: str) -> Path:
    """A peer's venv: ``BENCH_<NAME>_VENV``, else made by ``scripts/peer_venv.sh``."""
    return Path(
        os.environ.get(f"BENCH_{name.upper()}_VENV")
        or subprocess.run(
            [str(REPO_ROOT / "scripts" / "peer_venv.sh"), PEERS[name]], check=True,
            capture_output=True, text=True
        ).stdout.strip()
    )


def _litserve_impl() -> Impl:
    """LitServe in its peer venv: ``python <scenario's litserve_script> PORT``."""
    venv = _peer_venv("litserve")
    env = _base_env()
    env.pop("PYTHONPATH", None)
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return Impl("litserve", str(venv / "bin" / "python"), [str(venv / "bin" / "python")], env, (),
                stop_signal=signal.SIGINT)  # it ignores SIGTERM


def _bentoml_impl(work_dir: Path, name: str) -> Impl:
    """BentoML in its peer venv (``BENCH_BENTOML_VENV`` / ``BENCH_BENTOML14_VENV`` override)."""
    venv = _peer_venv(name)
    env = _base_env()
    env.pop("PYTHONPATH", None)  # the project's checkout must not shadow anything there
    env.update(
        BENCH_IMPL="bentoml",
        BENTOML_HOME=str(work_dir / f"{name}-home"),
        BENTOML_DO_NOT_TRACK="true",
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    options: tuple[str, ...] = ()
    if name == "bentoml":
        env["BENTOML_CONFIG"] = str(CONFIG_PATH)
        options = ("--production", "--api-workers", "1")
    # else BentoML 1.4 refuses config.yaml's version 1 and has no --api-workers: new-style
    # services carry their whole configuration (workers=1, traffic, batching) in the code
    return Impl(name, str(venv / "bin" / "python"), [str(venv / "bin" / "bentoml")], env, options)


def _bentolite_impl(work_dir: Path, command: str | None) -> Impl:
    env = _base_env()
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.update(
        BENCH_IMPL="bentolite",
        BENTOLITE_HOME=str(work_dir / "bentolite-home"),
        BENTOLITE_CONFIG=str(CONFIG_PATH),
    )
    if command:
        argv = command.split()
    else:
        script = Path(sys.executable).parent / "bentolite"
        argv = ([str(script)] if script.exists()
                else [sys.executable, "-c", "from bentolite.cli import main; main()"])
    return Impl("bentolite", sys.executable, argv, env)


#: one BLAS/OpenMP thread in every server process that sets none itself. v1 runner workers
#: get this from both schedulers; BentoML 1.4 sets nothing for a service without
#: ``resources.cpu`` (nor does bentolite for a root service, which runs in the API worker), so
#: numpy would start OpenBLAS's default spinning thread per core: on 2 shared cores that made
#: the batching model 25-100x slower whenever a neighbour was busy (measured).
BLAS_THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in list(env):  # neither side may pick up a stray home, config or impl choice
        if key.startswith(("BENTOML_", "BENTOLITE_", "BENCH_")):
            del env[key]
    env["PYTHONUNBUFFERED"] = "1"
    env.update(BLAS_THREADS_ENV)
    return env


def _serve_argv(impl: Impl, scenario: Scenario, port: int) -> list[str]:
    if impl.name == "litserve":
        assert scenario.litserve_script is not None
        return [*impl.serve_argv, str(SERVICES_DIR / scenario.litserve_script), str(port)]
    return [
        *impl.serve_argv,
        "serve",
        scenario.target,
        *impl.worker_options,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(SERVICES_DIR),
    ]


def _save_models(impl: Impl) -> None:
    subprocess.run(
        [impl.python, str(SERVICES_DIR / "save_models.py")],
        cwd=SERVICES_DIR,
        env=impl.env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )


def _post_once(port: int, scenario: Scenario) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{scenario.route}",
        data=scenario.body,
        headers={"Content-Type": scenario.content_type},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def run_once(
    impl: Impl, name: str, scenario: Scenario, round_index: int, args: argparse.Namespace, logs_dir: Path
) -> RunRecord:
    """Launch one server, measure it under every concurrency, stop it."""
    port = free_port()
    server = ServerProcess(
        _serve_argv(impl, scenario, port),
        env=impl.env,
        cwd=SERVICES_DIR,
        log_path=logs_dir / f"{name}-{impl.name}-r{round_index}.log",
        port=port,
        stop_signal=impl.stop_signal,
    )
    server.start()
    try:
        cold_start_s = server.wait_ready(timeout_s=args.ready_timeout_s)
        time.sleep(args.settle_s)  # let lazy start-up work finish before reading RSS
        rss_kb, processes = server.rss()
        record = RunRecord(impl.name, round_index, cold_start_s, rss_kb, processes)
        answer = _post_once(port, scenario)
        if not scenario.check_response(answer):
            raise RuntimeError(f"{impl.name} {name}: unexpected response {answer[:200]!r}")
        url = f"http://127.0.0.1:{port}{scenario.route}"
        levels = args.concurrency.get(name, scenario.concurrencies)
        if args.server_warmup_s > 0:
            # once per launch, at the highest level: lets BentoML's dispatcher finish its
            # training phase (seconds of corked waits) so every level measures steady state
            record.server_warmup = run_load_sync(
                url,
                scenario.body,
                content_type=scenario.content_type,
                concurrency=max(levels),
                duration_s=args.server_warmup_s,
                warmup_s=0,
            )
            _log(
                f"  {impl.name:9s} {name} r{round_index} server warm-up c={max(levels)}: "
                f"{record.server_warmup['requests_per_s']:.1f} req/s"
            )
        for concurrency in levels:
            io_before, cpu_before = tree_io_bytes(server.pid), tree_cpu_s(server.pid)
            record.loads[concurrency] = run_load_sync(
                url,
                scenario.body,
                content_type=scenario.content_type,
                concurrency=concurrency,
                duration_s=args.duration_s,
                warmup_s=args.warmup_s,
                expected_body=scenario.expected_body,
            )
            load = record.loads[concurrency]
            if load["answered"]:  # warm-up requests included, as in the byte counts
                load["io_bytes_per_request"] = (tree_io_bytes(server.pid) - io_before) / load["answered"]
                load["cpu_ms_per_request"] = (tree_cpu_s(server.pid) - cpu_before) * 1e3 / load["answered"]
            _log(
                f"  {impl.name:9s} {name} r{round_index} c={concurrency:<3d} "
                f"{record.loads[concurrency]['requests_per_s']:8.1f} req/s "
                f"p50 {format_value(record.loads[concurrency]['p50_ms'], 2):>7s} ms "
                f"p99 {format_value(record.loads[concurrency]['p99_ms'], 2):>7s} ms "
                f"errors {record.loads[concurrency]['error_count']}"
            )
        record.rss_after_load_kb = server.rss()[0]
    finally:
        stop_started = time.perf_counter()
        killed = server.stop(grace_s=args.stop_grace_s)
        stop_s = time.perf_counter() - stop_started
    record.killed_pids = killed
    record.stop_s = stop_s
    _log(
        f"  {impl.name:9s} {name} r{round_index} cold start {cold_start_s:.2f} s, "
        f"RSS {rss_kb / 1024:.0f} MiB in {processes} processes, stopped in {stop_s:.1f} s"
        + (f", SIGKILLed {killed}" if killed else "")
    )
    return record


def _interrupt_on_signals() -> None:
    """SIGTERM and SIGINT (even where inherited as ignored) unwind through the servers' stop."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parse_concurrency(specs: list[str]) -> dict[str, tuple[int, ...]]:
    result = {}
    for spec in specs:
        name, _, levels = spec.partition("=")
        if name not in SCENARIOS or not levels:
            raise argparse.ArgumentTypeError(f"--concurrency wants SCENARIO=1,8,...; got {spec!r}")
        result[name] = tuple(int(level) for level in levels.split(","))
    return result


def plan(impl_names: list[str], scenario_names: list[str]) -> dict[str, list[str]]:
    """Scenario -> the selected implementations it runs on (its baseline first)."""
    return {
        name: [impl for impl in SCENARIOS[name].impls if impl in impl_names]
        for name in scenario_names
    }


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--impl",
        default=",".join(IMPLS),
        help="comma list: bentoml (1.1.11, v1 scenarios), bentoml14 (1.4.39, new-style "
        "scenarios), litserve (0.2.19, ls_batching), bentolite (all); a scenario runs on those "
        "of its implementations listed",
    )
    parser.add_argument(
        "--scenario", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="server launches per implementation and scenario"
    )
    parser.add_argument(
        "--duration-s", type=float, default=10.0, help="measured seconds per concurrency"
    )
    parser.add_argument(
        "--warmup-s", type=float, default=2.0, help="unrecorded seconds before each measurement"
    )
    parser.add_argument(
        "--server-warmup-s",
        type=float,
        default=10.0,
        help="unrecorded load once per launch at the highest concurrency, before the levels",
    )
    parser.add_argument(
        "--concurrency",
        action="append",
        default=[],
        metavar="SCENARIO=1,8",
        help="override a scenario's concurrency levels (repeatable)",
    )
    parser.add_argument(
        "--settle-s", type=float, default=1.0, help="pause after ready before reading RSS"
    )
    parser.add_argument("--ready-timeout-s", type=float, default=120.0)
    parser.add_argument("--stop-grace-s", type=float, default=15.0, help="SIGTERM to SIGKILL delay")
    parser.add_argument(
        "--bentolite-cmd",
        default=None,
        help="command that takes 'serve ...' for bentolite (default: the venv's bentolite)",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", type=Path, help="write every raw measurement here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (homes, server logs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios and print the report."""
    args = build_parser().parse_args(argv)
    args.concurrency = _parse_concurrency(args.concurrency)
    impl_names = [name for name in args.impl.split(",") if name]
    scenario_names = [name for name in args.scenario.split(",") if name]
    for name in impl_names:
        if name not in IMPLS:
            raise SystemExit(f"unknown implementation {name!r}; choose from {IMPLS}")
    for name in scenario_names:
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r}; choose from {list(SCENARIOS)}")
    become_subreaper()
    _interrupt_on_signals()
    work_dir = Path(tempfile.mkdtemp(prefix="bentolite-bench-"))
    logs_dir = work_dir / "logs"
    _log(f"[bench] work dir {work_dir}")
    runs = plan(impl_names, scenario_names)
    impls = {}
    for name in dict.fromkeys(i for names in runs.values() for i in names):
        impls[name] = (
            _bentolite_impl(work_dir, args.bentolite_cmd) if name == "bentolite"
            else _litserve_impl() if name == "litserve"
            else _bentoml_impl(work_dir, name)
        )
    results: dict[str, list[RunRecord]] = {}
    failed = False
    try:
        for impl_name in dict.fromkeys(  # LitServe's script builds its model in memory
            i for name in scenario_names if SCENARIOS[name].needs_models for i in runs[name]
            if i != "litserve"
        ):
            _save_models(impls[impl_name])
        for name in scenario_names:
            results[name] = []
            for round_index in range(args.rounds):
                order = runs[name] if round_index % 2 == 0 else runs[name][::-1]
                for impl_name in order:
                    results[name].append(
                        run_once(impls[impl_name], name, SCENARIOS[name], round_index, args, logs_dir)
                    )
    except (Exception, KeyboardInterrupt) as exc:  # report what was measured, keep the logs
        failed = True
        args.keep = True
        _log(
            f"[bench] {'INTERRUPTED' if isinstance(exc, KeyboardInterrupt) else 'FAILED'}: "
            f"{type(exc).__name__}: {exc}"
        )
    report = render_report(results, SCENARIOS, args)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    if args.json:
        raw = {name: [record.__dict__ for record in records] for name, records in results.items()}
        args.json.write_text(json.dumps(raw, indent=1, default=str) + "\n")
    if args.keep:
        _log(f"[bench] kept {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

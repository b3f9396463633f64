"""Serve an inference graph, send it one sentence, print the JSON answer, stop the server.

``python run_demo.py`` serves this example (v1: runners, after ``save_models.py``);
``python run_demo.py --graph v2`` serves ``examples/inference_graph_v2`` (seed 003's new-style
services, after its ``build_models.py``) with ``bentolite serve .``. Used by
``./scripts/demo``. Exits non-zero on any failure and prints the tail of the server's log.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["SENTENCE", "main"]

HERE = Path(__file__).resolve().parent
SENTENCE = "the quick brown fox"
READY_TIMEOUT_S = float(os.environ.get("DEMO_READY_TIMEOUT_S", "180"))
REQUEST_TIMEOUT_S = 120.0
STOP_GRACE_S = 20.0
LOG_TAIL_CHARS = 4000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(server: subprocess.Popen[bytes], url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server was not ready within {timeout_s:g} s")


class Graph:
    """How to serve and ask one of the two graphs."""

    def __init__(self, directory: Path, target: str, route: str, body: bytes,
                 content_type: str, answers: int) -> None:
        self.directory, self.target, self.route = directory, target, route
        self.body, self.content_type, self.answers = body, content_type, answers


GRAPHS = {
    "v1": Graph(HERE, "service:svc", "/classify_generated_texts", SENTENCE.encode(),
                "text/plain", 3),
    "v2": Graph(HERE.parent / "inference_graph_v2", ".", "/generate_score",
                json.dumps({"original_sentence": SENTENCE}).encode(), "application/json", 2),
}


def ask(url: str, graph: Graph) -> object:
    request = urllib.request.Request(
        f"{url}{graph.route}", data=graph.body, headers={"Content-Type": graph.content_type},
        method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"the server answered {e.code}: {e.read().decode(errors='replace')}") from None


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, then SIGKILL after a grace period."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", choices=sorted(GRAPHS), default="v1")
    graph = GRAPHS[parser.parse_args(argv).graph]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", "from bentolite.cli import main; main()", "serve",
               graph.target, "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.NamedTemporaryFile(prefix="bentolite-demo-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    name = graph.directory.relative_to(HERE.parent.parent)
    print(f"[demo] serving {name} on {url} (log: {log_path})", flush=True)
    with log_path.open("wb") as log_file:
        # its own session: a Ctrl-C in the terminal reaches the demo, which stops the server
        server = subprocess.Popen(command, cwd=graph.directory, stdout=log_file,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_ready(server, url, READY_TIMEOUT_S)
            print(f"[demo] POST {graph.route} {graph.body.decode()!r}", flush=True)
            answer = ask(url, graph)
            print(json.dumps(answer, indent=2))
        except Exception as e:  # noqa: BLE001 - report, show the server's side, fail
            stop(server)
            tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
            print(f"[demo] FAILED: {e}\n[demo] server log tail:\n{tail}", file=sys.stderr)
            return 1
        stop(server)
    if not (isinstance(answer, list) and len(answer) == graph.answers
            and all(set(item) == {"generated", "score"} for item in answer)):
        print(f"[demo] FAILED: unexpected answer shape: {answer!r}", file=sys.stderr)
        return 1
    print(f"[demo] ok (server stopped with code {server.returncode})")
    log_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

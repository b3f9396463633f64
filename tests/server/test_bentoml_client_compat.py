"""BentoML 1.1.11's own ``bentoml.client`` calls a bentolite server unchanged."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


from tests.peers import bentoml_python
from serve_helpers import Server


CLIENT_SIDE = """
import json, sys
import numpy as np
import bentoml

client = bentoml.client.Client.from_url(sys.argv[1])
results = {
    "echo_json": client.echo_json({"a": [1, None]}),
    "echo_text": client.echo_text("hi"),
    "double": client.double(np.array([1.0, 2.5], dtype="float32")).tolist(),
    "runner_async": client.runner_async([1, 2]),
    "form": client.form(name="ann", values=[1]),
}
try:
    client.fails({})
except bentoml.exceptions.BentoMLException as exc:
    results["fails"] = str(exc)
print("RESULT " + json.dumps(results))
"""


def test_bentoml_1_1_client_calls_bentolite(server: Server, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BENTOML_HOME"] = str(tmp_path / "bentoml-home")
    done = subprocess.run([bentoml_python(), "-c", CLIENT_SIDE, server.url], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    results = json.loads(line[len("RESULT "):])
    assert results.pop("fails").startswith("Error making request: 500:")
    assert results == {"echo_json": {"a": [1, None]}, "echo_text": "hi", "double": [2.0, 5.0],
                       "runner_async": [2, 3], "form": {"name": "ann", "values": [1]}}

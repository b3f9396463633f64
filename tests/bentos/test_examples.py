"""Every v1 example under examples/ builds into a bento: its save_models.py (tiny offline
models), then ``bentolite build`` of its bentofile.yaml; quickstart is also served."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.bentos.project import cli, ok
from tests.e2e.example_server import EXAMPLES, ExampleServer, save_models

#: example -> (service name, models its runners use)
EXPECTED = {
    "quickstart": ("iris_classifier", {"iris_clf"}),
    "ensemble": ("inference_graph_demo", {"model_a", "model_b"}),
    "ocr_sentiment": ("sentiment_analysis", {"sentiment_model", "ocr_model"}),
    "inference_graph": ("inference_graph", {"gpt2-generation", "distilgpt2-generation",
                                            "gpt2-medium-generation",
                                            "bert-base-uncased-classification"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_builds(example: str, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    home = tmp_path / "home"
    save_models(example, home)
    tag = ok(cli(home, "build", str(EXAMPLES / example), "-o", "tag")).strip()
    name, models = EXPECTED[example]
    assert tag.startswith(f"__tag__:{name}:")
    bento = home / "bentos" / name / tag.rpartition(":")[2]
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert {m["tag"].split(":")[0] for m in info["models"]} == models
    assert {m for r in info["runners"] for m in r["models"]} == {m["tag"] for m in info["models"]}
    for model in info["models"]:
        assert (bento / "models" / model["tag"].replace(":", "/") / "model.yaml").is_file()
    assert (bento / "src" / "service.py").is_file()
    assert not (bento / "src" / "save_models.py").exists()
    assert info["apis"] and info["python"]["packages"]
    if example == "quickstart":  # served from the bento alone
        with ExampleServer(example, home, tmp_path, target=str(bento), cwd=tmp_path) as server:
            server.wait_ready()
            answer = server.post_json("/classify", b"[[5.9, 3.0, 5.1, 1.8]]", "application/json")
            assert server.stop() == 0, server.log()[-3000:]
        assert answer == [2]

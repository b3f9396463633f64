"""examples/inference_graph/save_models.py saves the four models the example service uses."""
from __future__ import annotations

import pathlib
import runpy

import pytest

import bentolite

pytest.importorskip("transformers")

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "inference_graph" / "save_models.py"
NAMES = ["gpt2-generation", "distilgpt2-generation", "gpt2-medium-generation", "bert-base-uncased-classification"]


def test_save_models_default_is_tiny_and_offline(store_home, capsys):
    example = runpy.run_path(str(EXAMPLE))
    assert example["main"]([]) == 0
    printed = capsys.readouterr().out
    for name in NAMES:
        assert f"saved {name}:" in printed
    generators = [bentolite.transformers.get(f"{name}:latest") for name in NAMES[:3]]
    assert {m.info.options.task for m in generators} == {"text-generation"}
    sizes = {m.file_size for m in generators}
    assert len(sizes) == 3, "the three generators differ in size"
    classifier = bentolite.transformers.get("bert-base-uncased-classification:latest")
    assert classifier.info.options.task == "text-classification"

    # what the example service does with them (max_length, num_return_sequences pass through)
    generate = bentolite.transformers.get_runnable(generators[0])()
    out = generate.__call__("the quick brown", max_length=40, num_return_sequences=1)
    sentence = out[0]["generated_text"]
    assert sentence.startswith("the quick brown")
    score = bentolite.transformers.get_runnable(classifier)().__call__(sentence)[0]["score"]
    assert 0.0 <= score <= 1.0

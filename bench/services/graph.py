"""Inference-graph scenario: two text generators in parallel, then a classifier per text.

The shape of BentoML's v1 inference-graph example (gpt2 + distilgpt2 generators, a
distilbert classifier), with the tiny numpy models of ``tiny_models.py`` so both
implementations run it without a model hub or a framework install.
"""

from __future__ import annotations

import asyncio

from _impl import bentoml
from tiny_models import TextClassifier, TextGenerator

__all__ = ["svc", "TinyGenerator", "TinyClassifier"]


class TinyGenerator(bentoml.Runnable):
    """A ``TextGenerator`` (``tiny_models.py``) as a runnable."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, seed: int) -> None:
        self.model = TextGenerator(seed)

    @bentoml.Runnable.method(batchable=False)
    def generate(self, prompt: str, new_words: int = 8) -> str:
        """Continue ``prompt``."""
        return self.model.generate(prompt, new_words)


class TinyClassifier(bentoml.Runnable):
    """A ``TextClassifier`` (``tiny_models.py``) as a runnable."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self) -> None:
        self.model = TextClassifier()

    @bentoml.Runnable.method(batchable=False)
    def classify(self, text: str) -> dict:
        """Label ``text`` POSITIVE or NEGATIVE with a probability."""
        return self.model.classify(text)


generator_a = bentoml.Runner(TinyGenerator, name="generator_a", runnable_init_params={"seed": 1})
generator_b = bentoml.Runner(TinyGenerator, name="generator_b", runnable_init_params={"seed": 2})
classifier = bentoml.Runner(TinyClassifier, name="classifier")
svc = bentoml.Service("bench_inference_graph", runners=[generator_a, generator_b, classifier])


@svc.api(input=bentoml.io.Text(), output=bentoml.io.JSON())
async def classify_generated_texts(original_sentence: str) -> list:
    """Generate two continuations in parallel, then score each one."""
    generated = await asyncio.gather(
        generator_a.generate.async_run(original_sentence),
        generator_b.generate.async_run(original_sentence),
    )
    results = []
    for sentence in generated:
        score = await classifier.classify.async_run(sentence)
        results.append({"generated": sentence, "score": score["score"], "label": score["label"]})
    return results

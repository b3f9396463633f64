"""Inference-graph scenario, new style: the shape of BentoML's 1.2+ inference-graph example.

Two generator services called in parallel (``asyncio.gather`` over ``to_async``), then a
classifier service per generated text; each dependency runs in its own process. The models
are ``tiny_models.py``'s, as in the v1 ``graph.py``.
"""

from __future__ import annotations

import asyncio

from _impl import bentoml
from tiny_models import TextClassifier, TextGenerator

__all__ = ["GeneratorA", "GeneratorB", "Classifier", "InferenceGraph"]


class _Generator:
    """A ``TextGenerator`` as a service; each subclass is one service with its own seed."""

    SEED = 0

    def __init__(self) -> None:
        self.model = TextGenerator(seed=self.SEED)

    @bentoml.api
    def generate(self, prompt: str, new_words: int = 8) -> str:
        """Continue ``prompt``."""
        return self.model.generate(prompt, new_words)


@bentoml.service(workers=1)
class GeneratorA(_Generator):
    SEED = 1


@bentoml.service(workers=1)
class GeneratorB(_Generator):
    SEED = 2


@bentoml.service(workers=1)
class Classifier:
    def __init__(self) -> None:
        self.model = TextClassifier()

    @bentoml.api
    def classify(self, text: str) -> dict:
        """Label ``text`` POSITIVE or NEGATIVE with a probability."""
        return self.model.classify(text)


@bentoml.service(workers=1, traffic={"timeout": 60})
class InferenceGraph:
    generator_a = bentoml.depends(GeneratorA)
    generator_b = bentoml.depends(GeneratorB)
    classifier = bentoml.depends(Classifier)

    @bentoml.api
    async def classify_generated_texts(self, original_sentence: str) -> list:
        """Generate two continuations in parallel, then score each one."""
        generated = await asyncio.gather(
            self.generator_a.to_async.generate(original_sentence),
            self.generator_b.to_async.generate(original_sentence),
        )
        results = []
        for sentence in generated:
            score = await self.classifier.to_async.classify(sentence)
            results.append({"generated": sentence, "score": score["score"], "label": score["label"]})
        return results

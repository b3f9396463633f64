"""Inference-graph scenario: two text generators in parallel, then a classifier per text.

The shape of BentoML's v1 inference-graph example (gpt2 + distilgpt2 generators, a
distilbert classifier), with tiny numpy models so both implementations run it without a
model hub or a framework install.
"""

from __future__ import annotations

import asyncio
import zlib

import numpy as np
from _impl import bentoml

__all__ = ["svc", "TinyGenerator", "TinyClassifier"]

_VOCAB = [f"w{i}" for i in range(256)]
_DIM = 64


def _embed(words: list[str], table: np.ndarray) -> np.ndarray:
    ids = [zlib.crc32(w.encode()) % len(_VOCAB) for w in words] or [0]
    return table[ids].mean(axis=0)


class TinyGenerator(bentoml.Runnable):
    """Appends ``new_words`` words, each the argmax of a tiny random language model."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.embeddings = rng.standard_normal((len(_VOCAB), _DIM)).astype(np.float32)
        self.projection = rng.standard_normal((_DIM, len(_VOCAB))).astype(np.float32)

    @bentoml.Runnable.method(batchable=False)
    def generate(self, prompt: str, new_words: int = 8) -> str:
        """Continue ``prompt``."""
        words = prompt.split()
        for _ in range(new_words):
            logits = _embed(words[-8:], self.embeddings) @ self.projection
            words.append(_VOCAB[int(np.argmax(logits))])
        return " ".join(words)


class TinyClassifier(bentoml.Runnable):
    """Scores a text with a bag-of-words logistic model: ``{"label", "score"}``."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.embeddings = rng.standard_normal((len(_VOCAB), _DIM)).astype(np.float32)
        self.weights = rng.standard_normal(_DIM).astype(np.float32)

    @bentoml.Runnable.method(batchable=False)
    def classify(self, text: str) -> dict:
        """Label ``text`` POSITIVE or NEGATIVE with a probability."""
        logit = float(_embed(text.split(), self.embeddings) @ self.weights)
        positive = 1.0 / (1.0 + np.exp(-logit))
        label = "POSITIVE" if positive >= 0.5 else "NEGATIVE"
        return {"label": label, "score": float(max(positive, 1.0 - positive))}


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

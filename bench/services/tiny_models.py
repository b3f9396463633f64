"""The graph scenarios' tiny numpy models (no framework): a text generator and a classifier.

Stand-ins for BentoML's inference-graph example models (gpt2 / distilgpt2 generators, a
distilbert classifier), small enough that the serving path, not the model, is measured.
``graph.py`` (v1 runners) and ``v2_graph.py`` (new-style services) both wrap these.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["TextClassifier", "TextGenerator"]

_VOCAB = [f"w{i}" for i in range(256)]
_DIM = 64


def _embed(words: list[str], table: np.ndarray) -> np.ndarray:
    ids = [zlib.crc32(w.encode()) % len(_VOCAB) for w in words] or [0]
    return table[ids].mean(axis=0)


class TextGenerator:
    """Appends ``new_words`` words, each the argmax of a tiny random language model."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.embeddings = rng.standard_normal((len(_VOCAB), _DIM)).astype(np.float32)
        self.projection = rng.standard_normal((_DIM, len(_VOCAB))).astype(np.float32)

    def generate(self, prompt: str, new_words: int = 8) -> str:
        """Continue ``prompt``."""
        words = prompt.split()
        for _ in range(new_words):
            logits = _embed(words[-8:], self.embeddings) @ self.projection
            words.append(_VOCAB[int(np.argmax(logits))])
        return " ".join(words)


class TextClassifier:
    """Scores a text with a bag-of-words logistic model: ``{"label", "score"}``."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.embeddings = rng.standard_normal((len(_VOCAB), _DIM)).astype(np.float32)
        self.weights = rng.standard_normal(_DIM).astype(np.float32)

    def classify(self, text: str) -> dict:
        """Label ``text`` POSITIVE or NEGATIVE with a probability."""
        logit = float(_embed(text.split(), self.embeddings) @ self.weights)
        positive = 1.0 / (1.0 + np.exp(-logit))
        label = "POSITIVE" if positive >= 0.5 else "NEGATIVE"
        return {"label": label, "score": float(max(positive, 1.0 - positive))}

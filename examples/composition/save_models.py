"""Save the composition example's two tiny models into the bentolite store (no network).

``model_a`` scales its input, ``model_b`` adds a bias: stand-ins for the pipelines of the
BentoML model-composition guide, small enough to train and save in a second.

    python save_models.py
"""
from __future__ import annotations

import numpy as np

import bentolite as bentoml


class Affine:
    """``x * scale + bias``: a picklable stand-in for a real model."""

    def __init__(self, scale: float, bias: float) -> None:
        self.scale = scale
        self.bias = bias

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype="float32") * self.scale + self.bias


def main() -> None:
    for name, model in (("model_a", Affine(2.0, 0.0)), ("model_b", Affine(1.0, 1.0))):
        saved = bentoml.picklable_model.save_model(
            name, model, signatures={"__call__": {"batchable": True}})
        print(f"saved {saved.tag}")


if __name__ == "__main__":
    main()

"""Save the ensemble example's two models: an xgboost Booster and a torch MLP.

Both are tiny and built offline in a second (``bentolite.testing``); each takes the four
image features the service's preprocessing Runnable computes.

    python save_models.py
"""
from __future__ import annotations

import argparse
import sys
import time

import bentolite as bentoml

__all__ = ["N_FEATURES", "save_models", "main"]

#: features per image (see ``service.MyPreprocessRunnable``)
N_FEATURES = 4


def save_models() -> list[bentoml.Model]:
    """Save ``model_a`` (xgboost regression) and ``model_b`` (torch MLP, two outputs)."""
    from bentolite import testing

    booster, _ = testing.tiny_xgboost_booster(seed=0, n_features=N_FEATURES)
    model_a = bentoml.xgboost.save_model("model_a", booster, labels={"size": "tiny"})
    mlp = testing.tiny_torch_mlp(seed=0, n_features=N_FEATURES, n_outputs=2)
    model_b = bentoml.pytorch.save_model("model_b", mlp, labels={"size": "tiny"})
    return [model_a, model_b]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    started = time.perf_counter()
    models = save_models()
    for model in models:
        print(f"saved {model.tag} ({model.info.module})")
    print(f"{len(models)} models saved in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

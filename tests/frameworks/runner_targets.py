"""Runners over the frameworks' stored test models, for worker processes.

A worker started with target ``tests.frameworks.runner_targets:<attr>`` imports this module
and reads the attribute, which builds the runner from the store (``BENTOLITE_HOME`` comes
from the test's environment), with the same name the test gave its own copy.
"""
from __future__ import annotations

from typing import Any

import bentolite

__all__ = ["MODELS", "runner_for", "make_batch_echo"]

#: target attribute -> (framework, stored model tag)
MODELS = {
    "batch_echo_runner": ("pytorch", "tiny-batch-echo:latest"),
    "xgboost_runner": ("xgboost", "tiny-booster:latest"),
    "generator_runner": ("transformers", "tiny-gpt2-generation:latest"),
    "ocr_runner": ("easyocr", "tiny-ocr-en:latest"),
    "sklearn_runner": ("sklearn", "iris_clf:latest"),
    "onnx_runner": ("onnx", "tiny-onnx:latest"),
    "lightgbm_runner": ("lightgbm", "tiny-lightgbm:latest"),
    "catboost_runner": ("catboost", "tiny-catboost:latest"),
    "torchscript_runner": ("torchscript", "tiny-script-mlp:latest"),
}

_runners: dict[str, Any] = {}


def runner_for(attr: str) -> bentolite.Runner:
    """The runner for target attribute ``attr``, built once per process."""
    if attr not in _runners:
        framework, tag = MODELS[attr]
        model = getattr(bentolite, framework).get(tag)
        _runners[attr] = model.to_runner(name=attr.replace("_", "-"))
    return _runners[attr]


def __getattr__(name: str) -> Any:
    if name in MODELS:
        return runner_for(name)
    raise AttributeError(name)


def make_batch_echo() -> Any:
    """A torch module returning, for each input row, (row[0], size of the batch it ran in)."""
    import torch

    class _BatchSizeEcho(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            sizes = torch.full((x.shape[0],), float(x.shape[0]), dtype=x.dtype, device=x.device)
            return torch.stack([x[:, 0], sizes], dim=1)

    return _BatchSizeEcho()

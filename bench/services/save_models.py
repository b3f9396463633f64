"""Save the scenario models into the store of the implementation under test.

Run with ``BENCH_IMPL`` and the store's home (``BENTOML_HOME`` / ``BENTOLITE_HOME``) set;
``compare.py`` does this before serving.
"""

from __future__ import annotations

from _impl import bentoml
from numpy_model import BatchModel

__all__ = ["BATCH_MODEL_NAME", "main"]

BATCH_MODEL_NAME = "bench_batch_model"


def main() -> None:
    """Save every model the scenarios need and print their tags."""
    model = bentoml.picklable_model.save_model(
        BATCH_MODEL_NAME,
        BatchModel(),
        signatures={"predict": {"batchable": True, "batch_dim": 0}},
    )
    print(model.tag)


if __name__ == "__main__":
    main()

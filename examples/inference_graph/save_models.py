"""Save the inference-graph example's models into the bentolite store.

By default this builds tiny offline stand-ins in a few seconds (three GPT-2 style generators
of different sizes and seeds, and a BERT classifier) with ``bentolite.testing``. With ``--hub``
it downloads the real gpt2, distilgpt2, gpt2-medium and bert-base-uncased instead.

    python save_models.py          # tiny models, no network
    python save_models.py --hub    # real models from the Hugging Face hub
"""
from __future__ import annotations

import argparse
import sys
import time

import bentolite as bentoml

__all__ = ["GENERATORS", "CLASSIFIER", "save_tiny_models", "save_hub_models", "main"]

#: store name -> (hub model id, tiny builder settings)
GENERATORS = {
    "gpt2-generation": ("gpt2", {"seed": 0, "n_embd": 32, "n_layer": 2}),
    "distilgpt2-generation": ("distilgpt2", {"seed": 1, "n_embd": 16, "n_layer": 1}),
    "gpt2-medium-generation": ("gpt2-medium", {"seed": 2, "n_embd": 48, "n_layer": 3}),
}
CLASSIFIER = ("bert-base-uncased-classification", "bert-base-uncased")


def save_tiny_models() -> list[bentoml.Model]:
    """Build and save the tiny offline models."""
    from bentolite import testing

    saved = [
        bentoml.transformers.save_model(name, testing.tiny_gpt2_pipeline(**settings), labels={"size": "tiny"})
        for name, (_, settings) in GENERATORS.items()
    ]
    name, _ = CLASSIFIER
    saved.append(bentoml.transformers.save_model(name, testing.tiny_bert_pipeline(), labels={"size": "tiny"}))
    return saved


def save_hub_models() -> list[bentoml.Model]:
    """Download the real models with ``transformers.pipeline`` and save them."""
    import transformers

    saved = [
        bentoml.transformers.save_model(name, transformers.pipeline("text-generation", model=hub_id))
        for name, (hub_id, _) in GENERATORS.items()
    ]
    name, hub_id = CLASSIFIER
    classifier = transformers.pipeline("text-classification", model=hub_id, tokenizer=hub_id)
    saved.append(bentoml.transformers.save_model(name, classifier))
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", action="store_true", help="download the real models from the Hugging Face hub")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # tiny models trigger notes and progress bars that mean nothing here
    hf_logging.disable_progress_bar()
    try:
        models = save_hub_models() if args.hub else save_tiny_models()
    except OSError as e:
        if not args.hub:
            raise
        print(f"could not fetch models from the hub ({e}); run without --hub for tiny offline models", file=sys.stderr)
        return 1
    for model in models:
        print(f"saved {model.tag} ({model.info.options.task}, {model.file_size / 1e6:.1f} MB) at {model.path}")
    print(f"{len(models)} models saved in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

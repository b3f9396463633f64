"""Make the inference graph's models where ``transformers.pipeline(model="gpt2")`` finds them.

By default this writes tiny offline stand-ins (GPT-2 style generators and a BERT classifier,
built in seconds by ``bentolite.testing``) into ``./gpt2``, ``./distilgpt2`` and
``./bert-base-uncased``: a local directory of that name wins over the hub, so seed 003's
service loads them unchanged. With ``--hub`` it removes them, and the service downloads the
real models on start (needs network).

    python build_models.py          # tiny models, no network
    python build_models.py --hub    # use the real hub models
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: local directory (= hub model id) -> how to build its tiny stand-in
MODELS = {
    "gpt2": ("gpt2", {"seed": 0, "n_embd": 32, "n_layer": 2}),
    "distilgpt2": ("gpt2", {"seed": 1, "n_embd": 16, "n_layer": 1}),
    "bert-base-uncased": ("bert", {}),
}


def build_tiny_models(target: Path = HERE) -> list[Path]:
    """Write each tiny pipeline's model and tokenizer (``save_pretrained``) under ``target``."""
    from bentolite import testing

    written = []
    for name, (kind, settings) in MODELS.items():
        pipeline = (testing.tiny_gpt2_pipeline(**settings) if kind == "gpt2"
                    else testing.tiny_bert_pipeline(**settings))
        if kind == "gpt2":
            # seed 003's max_length= is dropped (generate() does not take it, as in
            # BentoML), so the saved generation config bounds the text the tiny model makes
            pipeline.model.generation_config.max_new_tokens = 16
            pipeline.model.generation_config.do_sample = False
        path = target / name
        pipeline.save_pretrained(str(path))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", action="store_true", help="use the real hub models instead")
    args = parser.parse_args(argv)
    if args.hub:
        for name in MODELS:
            shutil.rmtree(HERE / name, ignore_errors=True)
        print("removed the local stand-ins: the service will load the hub models")
        return 0
    started = time.perf_counter()
    for path in build_tiny_models():
        print(f"wrote {path.relative_to(HERE)}/")
    print(f"built in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

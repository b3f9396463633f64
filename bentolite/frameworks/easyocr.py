"""``bentolite.easyocr``: an ``easyocr.Reader``, saved as its weight files and settings.

The detector and recognizer weights are copied into the model directory and the Reader is
rebuilt from them with downloads disabled, so a stored model loads offline.
"""
from __future__ import annotations

import os
import shutil
from types import ModuleType
from typing import Any, Mapping, Sequence

import attrs

from ..exceptions import BentoMLException
from ..models import Model
from ..models.model import ModelOptions as _BaseOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable
from ._device import torch_device

__all__ = [
    "MODULE_NAME",
    "API_VERSION",
    "ModelOptions",
    "EasyOCROptions",
    "save_model",
    "load_model",
    "get",
    "get_runnable",
]

MODULE_NAME = "bentoml.easyocr"
API_VERSION = "v2"
EXTRA = "easyocr"
WEIGHTS_DIR = "weights"
USER_NETWORK_DIR = "user_network"
V1_MODEL_FILENAME = "saved_model.pkl"
DEFAULT_SIGNATURES = {
    "detect": {"batchable": False},
    "readtext": {"batchable": False},
    "readtextlang": {"batchable": False},
    "recognize": {"batchable": False},
    "readtext_batched": {"batchable": True},
}


@attrs.define
class EasyOCROptions(_BaseOptions):
    """The ``easyocr.Reader`` arguments needed to rebuild it from the saved weights."""

    lang_list: list[str] = attrs.Factory(list)
    recog_network: str = "standard"
    detect_network: str = "craft"
    detector: bool = True
    recognizer: bool = True
    quantize: bool = True
    cudnn_benchmark: bool = False


ModelOptions = EasyOCROptions
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "easyocr", DEFAULT_SIGNATURES, library="easyocr", extra=EXTRA,
    options=EasyOCROptions,
)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be an easyocr model."""
    return FRAMEWORK.get(tag_like)


def _flag(value: Any) -> bool:
    # easyocr 1.7 stores `self.quantize = quantize,` (a one-element tuple).
    return bool(value[0] if isinstance(value, tuple) else value)


def _recognizer_files(reader: Any, recog_network: str) -> tuple[list[str], list[str]]:
    """(weight files, user-network files) the reader's recognizer was built from."""
    from easyocr.config import recognition_models

    generations = [recognition_models["gen2"], recognition_models["gen1"]]
    for models in generations:
        if recog_network in models:
            return [models[recog_network]["filename"]], []
    if recog_network == "standard":
        for models in generations:
            for entry in models.values():
                if (
                    entry["model_script"] == reader.model_lang
                    and entry["characters"] == reader.character
                    and os.path.isfile(os.path.join(reader.model_storage_directory, entry["filename"]))
                ):
                    return [entry["filename"]], []
        raise BentoMLException(
            f"Cannot tell which recognizer weights the reader uses (model_lang={reader.model_lang!r}); "
            "pass recog_network= the model name, e.g. 'english_g2'"
        )
    return [f"{recog_network}.pth"], [f"{recog_network}.yaml", f"{recog_network}.py"]


def _infer_lang_list(reader: Any) -> list[str]:
    if getattr(reader, "model_lang", None) == "english":
        return ["en"]
    raise BentoMLException(
        "easyocr.Reader does not record its language list; pass lang_list= to save_model"
    )


def save_model(
    name: TagLike,
    reader: Any,
    *,
    lang_list: Sequence[str] | None = None,
    recog_network: str = "standard",
    signatures: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    external_modules: Sequence[ModuleType] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """Save an ``easyocr.Reader``: its weight files and the settings to rebuild it.

    ``lang_list`` and ``recog_network`` are what the Reader was created with; ``lang_list``
    may be left out for an English-only reader.
    """
    easyocr = FRAMEWORK.lib()
    from easyocr.config import detection_models

    if not isinstance(reader, easyocr.Reader):
        raise TypeError(f"Given model ({reader!r}) is not an easyocr.Reader.")
    has_detector = hasattr(reader, "detector")
    has_recognizer = hasattr(reader, "recognizer")
    options = EasyOCROptions(
        lang_list=list(lang_list) if lang_list is not None else _infer_lang_list(reader),
        recog_network=recog_network,
        detect_network=getattr(reader, "detect_network", "craft"),
        detector=has_detector,
        recognizer=has_recognizer,
        quantize=_flag(reader.quantize),
        cudnn_benchmark=_flag(reader.cudnn_benchmark),
    )
    weights: list[str] = []
    network_files: list[str] = []
    if has_detector:
        weights.append(detection_models[options.detect_network]["filename"])
    if has_recognizer:
        recognizer_weights, network_files = _recognizer_files(reader, recog_network)
        weights += recognizer_weights
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata, options=options,
    ) as bento_model:
        for folder, source_dir, files in (
            (WEIGHTS_DIR, reader.model_storage_directory, weights),
            (USER_NETWORK_DIR, reader.user_network_directory, network_files),
        ):
            os.makedirs(bento_model.path_of(folder))
            for file in files:
                source = os.path.join(source_dir, file)
                if not os.path.isfile(source):
                    raise BentoMLException(f"easyocr file {source} not found; cannot save the reader")
                shutil.copy2(source, bento_model.path_of(os.path.join(folder, file)))
    return bento_model


def load_model(bento_model: TagLike | Model, *, gpu: bool | str | None = None) -> Any:
    """Rebuild the ``easyocr.Reader`` from the stored weights (never downloads).

    ``gpu``: as ``easyocr.Reader``'s; ``None`` uses CUDA when torch sees a device.
    """
    import cloudpickle

    easyocr = FRAMEWORK.lib()
    model = FRAMEWORK.resolve(bento_model)
    if model.info.api_version == "v1":  # BentoML 1.1: a cloudpickled Reader
        with open(model.path_of(V1_MODEL_FILENAME), "rb") as fh:
            return cloudpickle.load(fh)
    options: EasyOCROptions = model.info.options
    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    return easyocr.Reader(
        list(options.lang_list),
        gpu=gpu,
        model_storage_directory=model.path_of(WEIGHTS_DIR),
        user_network_directory=model.path_of(USER_NETWORK_DIR),
        detect_network=options.detect_network,
        recog_network=options.recog_network,
        download_enabled=False,
        detector=options.detector,
        recognizer=options.recognizer,
        verbose=False,
        quantize=options.quantize,
        cudnn_benchmark=options.cudnn_benchmark,
    )


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable calling the Reader's methods, on the GPU when one is assigned."""

    def load(self: Runnable) -> Any:
        self.device = torch_device()
        return load_model(bento_model, gpu="cuda" if self.device.startswith("cuda") else False)

    return build_runnable(
        bento_model,
        name="EasyOCRRunnable",
        load=load,
        supported_resources=("nvidia.com/gpu", "cpu"),
        multi_threading=True,
    )

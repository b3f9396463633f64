"""``bentolite.transformers``: Hugging Face pipelines and pretrained objects (``save_pretrained``)."""
from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any, Mapping, Sequence

import attrs

from ..exceptions import BentoMLException
from ..models import Model
from ..models.model import ModelOptions as _BaseOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable, package_version
from ._device import torch_device

__all__ = [
    "MODULE_NAME",
    "API_VERSION",
    "ModelOptions",
    "TransformersOptions",
    "save_model",
    "load_model",
    "get",
    "get_runnable",
]

logger = logging.getLogger(__name__)

MODULE_NAME = "bentoml.transformers"
API_VERSION = "v2"
EXTRA = "transformers"
PIPELINE_PICKLE = "pipeline.v2.pkl"
PRETRAINED_PICKLE = "pretrained.v2.pkl"
V1_PIPELINE_PICKLE = "pipeline.v1.pkl"

_PIPELINE_METHODS = ("__call__",)
_TOKENIZER_METHODS = (
    "__call__", "tokenize", "encode", "encode_plus", "batch_encode_plus", "pad",
    "create_token_type_ids_from_sequences", "build_inputs_with_special_tokens",
    "prepare_for_model", "truncate_sequences", "convert_tokens_to_string",
    "batch_decode", "decode", "get_special_tokens_mask", "clean_up_tokenization",
    "prepare_seq2seq_batch",
)
_MODEL_METHODS = ("__call__", "forward", "generate")
_PROCESSOR_METHODS = ("__call__", "preprocess", "pad", "batch_decode", "decode")


def _names(classes: Any) -> tuple[str, ...]:
    if classes is None:
        return ()
    if not isinstance(classes, (tuple, list)):
        classes = (classes,)
    return tuple(c if isinstance(c, str) else c.__name__ for c in classes)


@attrs.define
class TransformersOptions(_BaseOptions):
    """The pipeline's task definition, and ``kwargs`` passed to ``pipeline()`` at load."""

    task: str = ""
    tf: tuple[str, ...] = attrs.field(factory=tuple, converter=_names)
    pt: tuple[str, ...] = attrs.field(factory=tuple, converter=_names)
    default: dict[str, Any] = attrs.Factory(dict)
    type: str | None = None
    kwargs: dict[str, Any] = attrs.Factory(dict)


ModelOptions = TransformersOptions


def _versions() -> dict[str, str]:
    versions = {"transformers": package_version("transformers")}
    for dist in ("torch", "tensorflow", "flax", "jax", "jaxlib"):
        version = package_version(dist)
        if version != "unknown":
            versions[dist] = version
    return versions


# Default signatures depend on the saved object: save_model always passes them.
FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "transformers", {}, library="transformers", extra=EXTRA,
    options=TransformersOptions, versions=_versions,
)
_transformers = FRAMEWORK.lib


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be a transformers model."""
    return FRAMEWORK.get(tag_like)


def _plain_default(default: Mapping[str, Any] | None) -> dict[str, Any]:
    """A task's ``default`` with tuples and classes turned into YAML-friendly values."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, type):
            return value.__name__
        return value

    return plain(dict(default or {}))


def _auto_classes(names: Sequence[str]) -> tuple[type, ...]:
    transformers = _transformers()
    return tuple(getattr(transformers, name) for name in names if hasattr(transformers, name))


def _register_task(task: str, pipeline_class: type, options: TransformersOptions) -> None:
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(
        task,
        pipeline_class=pipeline_class,
        pt_model=_auto_classes(options.pt) or None,
        default=options.default or None,
        type=options.type,
    )


def _is_supported_task(task: str) -> bool:
    from transformers.pipelines import PIPELINE_REGISTRY

    try:
        PIPELINE_REGISTRY.check_task(task)
    except KeyError:
        return False
    return True


def load_model(bento_model: TagLike | Model, *args: Any, **kwargs: Any) -> Any:
    """The saved pipeline (rebuilt with ``transformers.pipeline``) or pretrained object.

    ``kwargs`` go to ``pipeline()`` (over the saved ``options.kwargs``) or to ``from_pretrained``.
    """
    import cloudpickle

    transformers = _transformers()
    model = FRAMEWORK.resolve(bento_model)
    options: TransformersOptions = model.info.options
    if os.path.exists(model.path_of(PRETRAINED_PICKLE)):
        with open(model.path_of(PRETRAINED_PICKLE), "rb") as fh:
            pretrained_class = cloudpickle.load(fh)
        return pretrained_class.from_pretrained(model.path, *args, **kwargs)
    if args:
        raise BentoMLException(
            f"Positional arguments {args} are not supported when loading a pipeline; "
            "pass keyword arguments for transformers.pipeline()"
        )
    merged = {**options.kwargs, **kwargs}
    if os.path.exists(model.path_of(PIPELINE_PICKLE)):
        with open(model.path_of(PIPELINE_PICKLE), "rb") as fh:
            pipeline_class = cloudpickle.load(fh)
        if not _is_supported_task(options.task):
            _register_task(options.task, pipeline_class, options)
        return transformers.pipeline(
            task=options.task, model=model.path, pipeline_class=pipeline_class, **merged
        )
    if os.path.exists(model.path_of(V1_PIPELINE_PICKLE)):  # BentoML 1.0 custom pipeline
        with open(model.path_of(V1_PIPELINE_PICKLE), "rb") as fh:
            saved = cloudpickle.load(fh)
        if not _is_supported_task(options.task):
            _register_task(options.task, type(saved), options)
    return transformers.pipeline(task=options.task, model=model.path, **merged)


def _default_signatures(obj: Any) -> dict[str, dict[str, bool]]:
    transformers = _transformers()
    groups: list[tuple[str, tuple[str, ...]]] = [
        ("Pipeline", _PIPELINE_METHODS),
        ("PreTrainedTokenizerBase", _TOKENIZER_METHODS),
        ("PreTrainedModel", _MODEL_METHODS),
        ("TFPreTrainedModel", _MODEL_METHODS),
        ("FlaxPreTrainedModel", _MODEL_METHODS),
        ("ProcessorMixin", _PROCESSOR_METHODS),
        ("ImageProcessingMixin", _PROCESSOR_METHODS),
        ("FeatureExtractionMixin", _PROCESSOR_METHODS),
    ]
    for class_name, methods in groups:
        base = getattr(transformers, class_name, None)
        if base is not None and isinstance(obj, base):
            return {m: {"batchable": False} for m in methods if callable(getattr(obj, m, None))}
    logger.warning("No default signatures for %s; pass signatures= to save_model", type(obj).__name__)
    return {}


def _framework_of(obj: Any) -> str | None:
    transformers = _transformers()
    for class_name, framework in (
        ("PreTrainedModel", "pt"),
        ("TFPreTrainedModel", "tf"),
        ("FlaxPreTrainedModel", "flax"),
    ):
        base = getattr(transformers, class_name, None)
        if base is not None and isinstance(obj, base):
            return framework
    return None


def _pipeline_options(pipeline: Any, task_name: str | None, task_definition: Mapping[str, Any] | None) -> TransformersOptions:
    from transformers.pipelines import PIPELINE_REGISTRY

    if (task_name is None) != (task_definition is None):
        raise BentoMLException("task_name and task_definition must be given together for a custom pipeline")
    if task_definition is not None:
        if pipeline.task != task_name:
            raise BentoMLException(f"pipeline.task is {pipeline.task!r}, not task_name {task_name!r}")
        impl = task_definition.get("impl")
        if impl is not None and type(pipeline) is not impl:
            raise BentoMLException(
                f"pipeline is a {type(pipeline).__name__}, not task_definition['impl'] {impl!r}"
            )
        definition = dict(task_definition)
        options = TransformersOptions(
            task=task_name,
            tf=definition.get("tf", ()),
            pt=definition.get("pt", ()),
            default=_plain_default(definition.get("default")),
            type=definition.get("type", "text"),
        )
        _register_task(task_name, type(pipeline), options)
        return options
    task = pipeline.task
    try:
        task, definition, _ = PIPELINE_REGISTRY.check_task(task)
    except KeyError:
        raise BentoMLException(
            f"Task {task!r} is not registered with transformers; pass task_name and "
            "task_definition (with 'impl', 'pt', 'default', 'type') for a custom pipeline"
        ) from None
    return TransformersOptions(
        task=task,
        tf=definition.get("tf", ()),
        pt=definition.get("pt", ()),
        default=_plain_default(definition.get("default")),
        type=definition.get("type"),
    )


def save_model(
    name: TagLike,
    pretrained_or_pipeline: Any = None,
    pipeline: Any = None,
    task_name: str | None = None,
    task_definition: Mapping[str, Any] | None = None,
    *,
    signatures: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    external_modules: Sequence[ModuleType] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **save_kwargs: Any,
) -> Model:
    """Save a pipeline (any task, custom ones with ``task_name``/``task_definition``) or a
    pretrained model/tokenizer/processor, with ``save_pretrained``."""
    import cloudpickle

    transformers = _transformers()
    if pretrained_or_pipeline is None:
        if pipeline is None:
            raise BentoMLException("save_model needs a pipeline or pretrained object")
        logger.warning("save_model(pipeline=...) is deprecated; pass it as the second argument")
        pretrained_or_pipeline = pipeline
    obj = pretrained_or_pipeline
    meta = dict(metadata or {})
    if isinstance(obj, transformers.Pipeline):
        options = _pipeline_options(obj, task_name, task_definition)
        pickle_name, pickled = PIPELINE_PICKLE, type(obj)
    elif hasattr(obj, "save_pretrained") and hasattr(type(obj), "from_pretrained"):
        if task_name is not None or task_definition is not None:
            raise BentoMLException("task_name/task_definition only apply to pipelines")
        options = TransformersOptions()
        pickle_name, pickled = PRETRAINED_PICKLE, type(obj)
        meta["_pretrained_class"] = type(obj).__name__
        framework = _framework_of(obj)
        if framework:
            meta["_framework"] = framework
    else:
        raise BentoMLException(
            f"{type(obj).__name__} is neither a transformers.Pipeline nor an object with "
            "save_pretrained/from_pretrained"
        )
    with FRAMEWORK.create(
        name,
        signatures=_default_signatures(obj) if signatures is None else signatures,
        labels=labels,
        custom_objects=custom_objects,
        external_modules=external_modules,
        metadata=meta,
        options=options,
    ) as bento_model:
        obj.save_pretrained(bento_model.path, **save_kwargs)
        with open(bento_model.path_of(pickle_name), "wb") as fh:
            cloudpickle.dump(pickled, fh)
    return bento_model


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable running the pipeline (or pretrained object) on its assigned device."""
    is_pipeline = not os.path.exists(bento_model.path_of(PRETRAINED_PICKLE))

    def load(self: Runnable) -> Any:
        self.device = torch_device()
        if is_pipeline:
            self.pipeline = load_model(bento_model, device=self.device)
            return self.pipeline
        loaded = load_model(bento_model)
        if hasattr(loaded, "to") and bento_model.info.metadata.get("_framework") == "pt":
            loaded = loaded.to(self.device)
            loaded.eval()
        return loaded

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if is_pipeline:
            return getattr(self.model, method)(*args, **kwargs)
        import torch

        with torch.inference_mode():
            return getattr(self.model, method)(*args, **kwargs)

    return build_runnable(
        bento_model,
        name="TransformersRunnable",
        load=load,
        call=call,
        supported_resources=("nvidia.com/gpu", "cpu"),
        multi_threading=True,
    )

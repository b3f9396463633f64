"""``bentolite.onnx``: ONNX models (``onnx.ModelProto``), run with onnxruntime.

The runnable picks onnxruntime's execution providers from the worker's resources (CUDA when
the scheduler assigned a GPU and onnxruntime has it, else CPU with the worker's thread share)
and casts each input to the dtype the graph declares, from numpy arrays, pandas DataFrames,
lists or torch tensors, as BentoML 1.1 did.
"""
from __future__ import annotations

import logging
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

import attrs

from ..exceptions import BentoMLException, InvalidArgument
from ..models import Model
from ..models.model import ModelOptions as _BaseOptions
from ..runner.runnable import Runnable
from ..tag import TagLike
from . import Framework, build_runnable, package_version, require
from ._device import assigned_gpu, cpu_threads

__all__ = [
    "MODULE_NAME",
    "API_VERSION",
    "ModelOptions",
    "ONNXOptions",
    "save_model",
    "load_model",
    "get",
    "get_runnable",
]

logger = logging.getLogger(__name__)

MODULE_NAME = "bentoml.onnx"
API_VERSION = "v2"
MODEL_FILENAME = "saved_model.onnx"
EXTRA = "onnx"
DEFAULT_SIGNATURES = {"run": {"batchable": False}}
_RUNTIME_DISTS = ("onnxruntime-gpu", "onnxruntime", "onnxruntime-silicon")


@attrs.define
class ONNXOptions(_BaseOptions):
    """The graph's input/output specs (``{"run": [ValueInfo as a dict]}``), and the
    ``providers``/``session_options`` a runnable uses instead of its defaults."""

    input_specs: dict[str, list[dict[str, Any]]] = attrs.Factory(dict)
    output_specs: dict[str, list[dict[str, Any]]] = attrs.Factory(dict)
    providers: list[Any] | None = None
    session_options: Any = None  # an onnxruntime.SessionOptions, set in code (with_options)

    def to_dict(self) -> dict[str, Any]:
        # SessionOptions is not YAML; like BentoML, model.yaml always holds null for it.
        return {**attrs.asdict(self), "session_options": None}


ModelOptions = ONNXOptions


def _versions() -> dict[str, str]:
    versions = {"onnx": package_version("onnx")}
    for dist in _RUNTIME_DISTS:
        version = package_version(dist)
        if version != "unknown":
            versions[dist] = version
            break
    return versions


FRAMEWORK = Framework(
    MODULE_NAME, API_VERSION, "onnx", DEFAULT_SIGNATURES, library="onnx", extra=EXTRA,
    options=ONNXOptions, versions=_versions,
)


def _ort() -> ModuleType:
    return require("onnxruntime", EXTRA)


def get(tag_like: TagLike) -> Model:
    """The stored model ``tag_like``, checked to be an onnx model."""
    return FRAMEWORK.get(tag_like)


def _provider_names(providers: Sequence[Any]) -> list[str]:
    return [p[0] if isinstance(p, (list, tuple)) else p for p in providers]


def load_model(
    bento_model: TagLike | Model,
    *,
    providers: list[Any] | None = None,
    session_options: Any = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` over the saved model (default: CPU provider)."""
    ort = _ort()
    model = FRAMEWORK.resolve(bento_model)
    if providers:
        unknown = [p for p in _provider_names(providers) if p not in ort.get_all_providers()]
        if unknown:
            raise BentoMLException(f"onnxruntime knows no execution provider(s) {unknown}")
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(model.path_of(MODEL_FILENAME), sess_options=session_options, providers=providers)


def _value_specs(values: Any) -> list[dict[str, Any]]:
    from google.protobuf.json_format import MessageToDict

    return [MessageToDict(value) for value in values]


def save_model(
    name: TagLike,
    model: Any,
    *,
    signatures: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    external_modules: Sequence[ModuleType] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """Save an ``onnx.ModelProto`` (``saved_model.onnx``); the only signature is ``run``."""
    onnx = FRAMEWORK.lib()
    _ort()
    if not isinstance(model, onnx.ModelProto):
        raise TypeError(f"Given model ({model!r}) is not an onnx.ModelProto.")
    if signatures is not None and list(signatures) != ["run"]:
        raise BentoMLException(
            f"Signatures {list(signatures)} are invalid: an ONNX model runs as an "
            "onnxruntime.InferenceSession, whose only method is 'run'"
        )
    options = ONNXOptions(
        input_specs={"run": _value_specs(model.graph.input)},
        output_specs={"run": _value_specs(model.graph.output)},
    )
    with FRAMEWORK.create(
        name, signatures=signatures, labels=labels, custom_objects=custom_objects,
        external_modules=external_modules, metadata=metadata, options=options,
    ) as bento_model:
        onnx.save(model, bento_model.path_of(MODEL_FILENAME))
    return bento_model


def _to_array(value: Any, dtype: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.astype(dtype, copy=False)
    if isinstance(value, (list, tuple)):
        return np.asarray(value).astype(dtype, copy=False)
    module = type(value).__module__
    if module.startswith("pandas") and hasattr(value, "to_numpy"):
        return value.to_numpy(dtype=dtype)
    if module.startswith("torch"):
        return value.detach().cpu().numpy().astype(dtype, copy=False)
    if module.startswith("tensorflow"):
        return np.asarray(value).astype(dtype, copy=False)
    raise InvalidArgument(
        f"ONNX run takes numpy arrays, pandas DataFrames, lists, torch or tensorflow tensors, "
        f"not {type(value).__name__}"
    )


def _caster(type_spec: Mapping[str, Any]) -> Callable[[Any], Any]:
    """A function casting one run argument to what the graph input ``type_spec`` declares."""
    import onnx.helper

    (kind, spec), = type_spec.items()
    if kind == "tensorType":
        dtype = onnx.helper.tensor_dtype_to_np_dtype(int(spec["elemType"]))
        return lambda value: _to_array(value, dtype)
    if kind == "sequenceType":
        element = _caster(spec["elemType"])
        return lambda value: [element(item) for item in value]
    if kind == "mapType":
        entry = _caster(spec["valueType"])
        return lambda value: {key: entry(item) for key, item in value.items()}
    raise BentoMLException(f"ONNX input type {kind!r} is not supported")


def _session_settings(options: ONNXOptions) -> tuple[list[Any], Any]:
    """(providers, session options) for this worker: its GPU when assigned, else its CPUs."""
    ort = _ort()
    session_options = options.session_options or ort.SessionOptions()
    if options.providers:
        return list(options.providers), session_options
    if assigned_gpu():
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"], session_options
        logger.warning("A GPU is assigned but onnxruntime has no CUDAExecutionProvider; running on cpu")
    session_options.intra_op_num_threads = cpu_threads()
    return ["CPUExecutionProvider"], session_options


def get_runnable(bento_model: Model) -> type[Runnable]:
    """A Runnable running the session on its assigned GPU, or its share of the CPUs."""
    options: ONNXOptions = bento_model.info.options

    def load(self: Runnable) -> Any:
        providers, session_options = _session_settings(options)
        session = load_model(bento_model, providers=providers, session_options=session_options)
        specs = options.input_specs.get("run")
        if not specs:  # BentoML 1.0 (API v1) stored no specs: read them from the graph
            import onnx

            specs = _value_specs(onnx.load(bento_model.path_of(MODEL_FILENAME)).graph.input)
        self.casters = [_caster(spec["type"]) for spec in specs]
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        return session

    def call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kwargs or len(args) != len(self.input_names):
            raise InvalidArgument(
                f"{method} takes {len(self.input_names)} positional input(s) {self.input_names}, "
                f"got {len(args)}" + (f" and keywords {sorted(kwargs)}" if kwargs else "")
            )
        feed = {name: cast(arg) for name, cast, arg in zip(self.input_names, self.casters, args)}
        outputs = getattr(self.model, method)(self.output_names, feed)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    return build_runnable(
        bento_model,
        name="ONNXRunnable",
        load=load,
        call=call,
        supported_resources=("nvidia.com/gpu", "cpu"),
        multi_threading=True,
    )

"""``Model``, ``ModelInfo`` and their records, in BentoML 1.x's ``model.yaml`` format."""
from __future__ import annotations

import importlib
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import attrs
import yaml

from ..exceptions import BentoMLException, NotFound
from ..tag import Tag

if TYPE_CHECKING:
    from ..runner.runnable import Runnable
    from ..runner.runner import Runner

__all__ = [
    "Model",
    "ModelInfo",
    "ModelContext",
    "ModelOptions",
    "PartialKwargsModelOptions",
    "ModelSignature",
    "ModelSignatureDict",
    "normalize_signatures",
    "framework_module",
]

logger = logging.getLogger(__name__)

MODEL_YAML = "model.yaml"
CUSTOM_OBJECTS = "custom_objects.pkl"


def _batch_dim(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


@attrs.frozen
class ModelSignature:
    """How a model method may be called: batchable or not, and along which dims."""

    batchable: bool = False
    batch_dim: tuple[int, int] = attrs.field(default=(0, 0), converter=_batch_dim)
    input_spec: Any = None
    output_spec: Any = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | ModelSignature) -> ModelSignature:
        if isinstance(data, ModelSignature):
            return data
        unknown = set(data) - {"batchable", "batch_dim", "input_spec", "output_spec"}
        if unknown:
            raise ValueError(f"unknown signature keys {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"batchable": self.batchable}
        if self.batchable:
            out["batch_dim"] = list(self.batch_dim)
        if self.input_spec is not None:
            out["input_spec"] = self.input_spec
        if self.output_spec is not None:
            out["output_spec"] = self.output_spec
        return out


ModelSignatureDict = dict  # v1 exported this name for type hints


def normalize_signatures(
    signatures: Mapping[str, Any] | None, default: Mapping[str, Any]
) -> dict[str, ModelSignature]:
    """Signatures given by a user (dicts or records) or the framework's default."""
    chosen = default if signatures is None else signatures
    return {name: ModelSignature.from_dict(sig) for name, sig in chosen.items()}


@attrs.define
class ModelOptions:
    """Framework options stored in ``model.yaml``; frameworks subclass this."""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def with_options(self, **kwargs: Any) -> ModelOptions:
        return attrs.evolve(self, **kwargs)


@attrs.define
class PartialKwargsModelOptions(ModelOptions):
    """Keyword arguments bound to each method at call time: ``{method: {kw: value}}``."""

    partial_kwargs: dict[str, dict[str, Any]] = attrs.Factory(dict)


@attrs.define
class ModelContext:
    framework_name: str = ""
    framework_versions: dict[str, str] = attrs.Factory(dict)
    bentoml_version: str = ""
    python_version: str = attrs.Factory(
        lambda: ".".join(str(p) for p in sys.version_info[:3])
    )

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


_MODULE_ALIASES = ("bentoml.", "bentolite.", "bentoml._internal.frameworks.", "bentolite.frameworks.")


def framework_module(module: str):
    """Import the bentolite framework module for a ``model.yaml`` ``module`` value."""
    short = module
    for prefix in sorted(_MODULE_ALIASES, key=len, reverse=True):
        if module.startswith(prefix):
            short = module[len(prefix):]
            break
    try:
        return importlib.import_module(f"bentolite.frameworks.{short}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("bentolite.frameworks"):
            raise NotFound(f"model module {module!r} is not supported by bentolite") from None
        raise


@attrs.define
class ModelInfo:
    """The contents of ``model.yaml``."""

    tag: Tag
    module: str
    labels: dict[str, str] = attrs.Factory(dict)
    options: ModelOptions = attrs.Factory(ModelOptions)
    metadata: dict[str, Any] = attrs.Factory(dict)
    context: ModelContext = attrs.Factory(ModelContext)
    signatures: dict[str, ModelSignature] = attrs.Factory(dict)
    api_version: str = "v1"
    creation_time: datetime = attrs.Factory(lambda: datetime.now(timezone.utc))

    @property
    def name(self) -> str:
        return self.tag.name

    @property
    def version(self) -> str | None:
        return self.tag.version

    @property
    def imported_module(self):
        return framework_module(self.module)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.tag.name,
            "version": self.tag.version,
            "module": self.module,
            "labels": dict(self.labels),
            "options": self.options.to_dict(),
            "metadata": dict(self.metadata),
            "context": self.context.to_dict(),
            "signatures": {k: v.to_dict() for k, v in self.signatures.items()},
            "api_version": self.api_version,
            "creation_time": self.creation_time.isoformat(),
        }

    def dump(self, path: str | os.PathLike[str]) -> None:
        Path(path, MODEL_YAML).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        data = dict(data)
        try:
            if data["version"] is None:
                raise BentoMLException("model.yaml has no 'version'")
            # YAML reads an unquoted all-digit version as a number
            tag = Tag(str(data["name"]), str(data["version"]))
            module = data["module"]
        except KeyError as e:
            raise BentoMLException(f"model.yaml is missing the {e.args[0]!r} key") from None
        except ValueError as e:
            raise BentoMLException(f"model.yaml has an invalid tag: {e}") from None
        context = dict(data.get("context") or {})
        if "pip_dependencies" in context:  # BentoML <= 1.0.0rc
            context.pop("pip_dependencies")
            context.setdefault("framework_versions", {})
        known = attrs.fields_dict(ModelContext)
        raw_options = data.get("options") or {}
        created = data.get("creation_time")
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        if created is None:
            created = datetime.now(timezone.utc)
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        info = cls(
            tag=tag,
            module=module,
            labels=dict(data.get("labels") or {}),
            options=ModelOptions(),
            metadata=dict(data.get("metadata") or {}),
            context=ModelContext(**{k: v for k, v in context.items() if k in known}),
            signatures={
                k: ModelSignature.from_dict(v or {}) for k, v in (data.get("signatures") or {}).items()
            },
            api_version=str(data.get("api_version") or "v1"),
            creation_time=created,
        )
        info.options = _structure_options(module, raw_options)
        return info

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> ModelInfo:
        file = Path(path, MODEL_YAML)
        try:
            data = yaml.safe_load(file.read_text())
        except FileNotFoundError:
            raise NotFound(f"{file} does not exist; {path} is not a model directory") from None
        except yaml.YAMLError as e:
            raise BentoMLException(f"{file} is not valid YAML: {_yaml_problem(e)}") from None
        if not isinstance(data, dict):
            raise BentoMLException(f"{file} does not hold a mapping")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError, BentoMLException) as e:
            message = getattr(e, "message", None) or str(e)
            raise BentoMLException(f"{file} is not a valid model.yaml: {message}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's message in one line: the problem and where it is."""
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(error).split())


def _structure_options(module: str, raw: Mapping[str, Any]) -> ModelOptions:
    """Rebuild ``info.options`` with the framework's options class when it has one."""
    try:
        options_cls = getattr(framework_module(module), "ModelOptions", ModelOptions)
    except NotFound:
        options_cls = ModelOptions
    if not raw:
        return options_cls()
    names = set(attrs.fields_dict(options_cls))
    return options_cls(**{k: v for k, v in raw.items() if k in names})


class Model:
    """A saved model in the store. Get one with ``bentolite.models.get`` or a framework's ``get``."""

    __slots__ = ("_info", "_path", "_custom_objects", "_loaded", "_runnable")

    def __init__(self, info: ModelInfo, path: str | os.PathLike[str], *, _internal: bool = False):
        if not _internal:
            raise BentoMLException(
                "Model cannot be constructed directly; use bentolite.models.get(tag) "
                "or bentolite.<framework>.save_model(...)"
            )
        self._info = info
        self._path = str(path)
        self._custom_objects: dict[str, Any] | None = None
        self._loaded: Any = None
        self._runnable: type[Runnable] | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Model:
        return cls(ModelInfo.from_path(path), path, _internal=True)

    # identity -------------------------------------------------------------------------
    @property
    def tag(self) -> Tag:
        return self._info.tag

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def path(self) -> str:
        return self._path

    def path_of(self, item: str) -> str:
        """Absolute path of ``item`` inside the model directory."""
        return os.path.join(self._path, item)

    @property
    def creation_time(self) -> datetime:
        return self._info.creation_time

    @property
    def file_size(self) -> int:
        return sum(f.stat().st_size for f in Path(self._path).rglob("*") if f.is_file())

    @property
    def custom_objects(self) -> dict[str, Any]:
        if self._custom_objects is None:
            file = Path(self.path_of(CUSTOM_OBJECTS))
            if not file.exists():
                self._custom_objects = {}
            else:
                import cloudpickle

                objects = cloudpickle.loads(file.read_bytes())
                if not isinstance(objects, dict):
                    raise ValueError(f"{file} does not hold a dict")
                self._custom_objects = objects
        return self._custom_objects

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.tag == self.tag

    def __hash__(self) -> int:
        return hash(self.tag)

    def __str__(self) -> str:
        return f'Model(tag="{self.tag}")'

    def __repr__(self) -> str:
        return f'Model(tag="{self.tag}", path="{self._path}")'

    # framework glue ---------------------------------------------------------------------
    def load_model(self, *args: Any, **kwargs: Any) -> Any:
        """Load with the model's framework (cached on this object)."""
        if self._loaded is None:
            self._loaded = self._info.imported_module.load_model(self, *args, **kwargs)
        return self._loaded

    def to_runnable(self) -> type[Runnable]:
        if self._runnable is None:
            self._runnable = self._info.imported_module.get_runnable(self)
        return self._runnable

    def to_runner(
        self,
        name: str = "",
        max_batch_size: int | None = None,
        max_latency_ms: int | None = None,
        method_configs: dict[str, dict[str, int]] | None = None,
        embedded: bool = False,
        scheduling_strategy: Any = None,
    ) -> Runner:
        """A Runner for this model; its name defaults to the model name."""
        from ..runner.runner import Runner

        kwargs: dict[str, Any] = {}
        if scheduling_strategy is not None:
            kwargs["scheduling_strategy"] = scheduling_strategy
        return Runner(
            self.to_runnable(),
            name=name or self.tag.name,
            models=[self],
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            method_configs=method_configs,
            embedded=embedded,
            **kwargs,
        )

    def with_options(self, **kwargs: Any) -> Model:
        """A copy of this model with ``info.options`` updated (e.g. ``kwargs={...}``)."""
        info = attrs.evolve(self._info, options=self._info.options.with_options(**kwargs))
        return Model(info, self._path, _internal=True)

    def export(self, path: str, output_format: str | None = None) -> str:
        from .archive import export_model

        return export_model(self.tag, path, output_format)


Loader = Callable[..., Any]

"""Shared pieces of the framework modules (``bentolite.<framework>``).

Each framework module declares one :class:`Framework` (its v1 module name, API version,
default signatures, library and pip extra) and keeps the v1 functions ``save_model``,
``load_model``, ``get`` and ``get_runnable`` explicit, each a few lines over the steps here:
:meth:`Framework.create` (store a model), :meth:`Framework.resolve` (find one to load) and
:func:`build_runnable` (its Runnable). What stays in a module is only what differs: how its
object is written and read, and its runnable's device handling. Framework libraries are
imported inside functions through :func:`require`, so ``import bentolite`` stays light.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, Sequence

import attrs

from ..exceptions import InvalidArgument, MissingDependencyException, NotFound
from ..models import Model, create
from ..models import get as _store_get
from ..models.model import ModelContext, ModelOptions
from ..runner.runnable import Runnable
from ..tag import TagLike

__all__ = [
    "Framework",
    "require",
    "package_version",
    "get_model",
    "build_runnable",
    "warn_on_version_change",
]

logger = logging.getLogger(__name__)

def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an error naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyException(
            f"{module!r} is required for this framework ({e}); "
            f"install it with: pip install 'bentolite[{extra}]'"
        ) from None


def package_version(*dists: str) -> str:
    """The installed version of the first of ``dists`` that is installed, else ``"unknown"``."""
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def get_model(tag: TagLike | Model, module_name: str) -> Model:
    """A model from the store, refusing one saved by another framework."""
    model = tag if isinstance(tag, Model) else _store_get(tag)
    short = module_name.rsplit(".", 1)[-1]
    if model.info.module.rsplit(".", 1)[-1] != short:
        raise NotFound(
            f"Model {model.tag} was saved with module {model.info.module}, "
            f"not loading with {module_name}"
        )
    return model


def warn_on_version_change(model: Model, dists: Mapping[str, str]) -> None:
    """Warn when the library now installed differs from the one the model was saved with."""
    saved = model.info.context.framework_versions
    for dist, now in dists.items():
        before = saved.get(dist)
        if before and before != now:
            logger.warning(
                "Model %s was saved with %s %s; loading with %s %s", model.tag, dist, before, dist, now
            )


@attrs.frozen
class Framework:
    """What a framework module declares once; the store steps every module shares.

    ``versions`` gives the ``{distribution: version}`` recorded at save and compared at load
    (default: ``{library: its installed version}``).
    """

    module_name: str
    api_version: str
    framework_name: str
    default_signatures: Mapping[str, Mapping[str, Any]]
    library: str | None = None
    extra: str | None = None
    options: type[ModelOptions] = ModelOptions
    versions: Callable[[], dict[str, str]] | None = None

    def lib(self) -> ModuleType:
        """The framework library, or an error naming the pip extra that installs it."""
        assert self.library is not None and self.extra is not None
        return require(self.library, self.extra)

    def framework_versions(self) -> dict[str, str]:
        if self.versions is not None:
            return self.versions()
        return {self.library: package_version(self.library)} if self.library else {}

    def get(self, tag_like: TagLike | Model) -> Model:
        """The stored model ``tag_like``, refused when another framework saved it."""
        return get_model(tag_like, self.module_name)

    def resolve(self, bento_model: TagLike | Model) -> Model:
        """The stored model to load: library importable, right framework, version drift logged."""
        if self.library is not None:
            self.lib()
        model = self.get(bento_model)
        warn_on_version_change(model, self.framework_versions())
        return model

    @contextlib.contextmanager
    def create(
        self,
        name: TagLike,
        *,
        signatures: Mapping[str, Any] | None,
        labels: Mapping[str, str] | None,
        custom_objects: Mapping[str, Any] | None,
        external_modules: Sequence[ModuleType] | None,
        metadata: Mapping[str, Any] | None,
        options: ModelOptions | None = None,
    ) -> Iterator[Model]:
        """A new model being written (its files go under ``model.path``); atomic on exit."""
        context = ModelContext(framework_name=self.framework_name, framework_versions=self.framework_versions())
        with create(
            name,
            module=self.module_name,
            api_version=self.api_version,
            signatures=self.default_signatures if signatures is None else signatures,
            labels=labels,
            options=self.options() if options is None else options,
            custom_objects=custom_objects,
            external_modules=external_modules,
            metadata=metadata,
            context=context,
        ) as bento_model:
            yield bento_model


def build_runnable(
    model: Model,
    *,
    name: str,
    load: Callable[[Runnable], Any],
    call: Callable[[Runnable, str, tuple[Any, ...], dict[str, Any]], Any] | None = None,
    supported_resources: tuple[str, ...] = ("cpu",),
    multi_threading: bool = True,
) -> type[Runnable]:
    """A Runnable class exposing each of ``model``'s signatures.

    ``load(self)`` runs in ``__init__`` and returns the loaded object (kept as ``self.model``),
    which must have a method for each signature; ``call(self, method, args, kwargs)`` runs one
    method (default: ``getattr(model, method)`` with the model's ``partial_kwargs`` merged
    under the call's kwargs).
    """

    def __init__(self: Runnable) -> None:
        self.model = load(self)
        missing = [m for m in model.info.signatures if not callable(getattr(self.model, m, None))]
        if missing:
            raise InvalidArgument(
                f"{type(self.model).__name__} has no method(s) {missing} named in the signatures of {model.tag}"
            )

    def default_call(self: Runnable, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        partial = getattr(model.info.options, "partial_kwargs", {}).get(method, {})
        return getattr(self.model, method)(*args, **{**partial, **kwargs})

    runner_call = call or default_call
    cls = type(
        name,
        (Runnable,),
        {
            "SUPPORTED_RESOURCES": supported_resources,
            "SUPPORTS_CPU_MULTI_THREADING": multi_threading,
            "__init__": __init__,
            "bento_model": model,
        },
    )
    for method_name, sig in model.info.signatures.items():
        cls.add_method(
            _method_caller(runner_call, method_name),
            method_name,
            batchable=sig.batchable,
            batch_dim=sig.batch_dim,
            input_spec=sig.input_spec,
            output_spec=sig.output_spec,
        )
    return cls


def _method_caller(call: Callable[..., Any], method_name: str) -> Callable[..., Any]:
    def run(self: Runnable, *args: Any, **kwargs: Any) -> Any:
        return call(self, method_name, args, kwargs)

    run.__name__ = method_name
    return run

"""The model store, ``$BENTOLITE_HOME/models/<name>/<version>/`` (BentoML 1.x layout), and
``create``, which stages a new model and commits it atomically (see ``bentolite.store``).
"""
from __future__ import annotations

import contextlib
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import attrs

from ..config import bentolite_home
from ..exceptions import BentoMLException
from ..store import Store
from ..tag import Tag, TagLike
from .model import (
    CUSTOM_OBJECTS,
    MODEL_YAML,
    Model,
    ModelContext,
    ModelInfo,
    ModelOptions,
    normalize_signatures,
)

__all__ = ["ModelStore", "MODEL_STORE_ENV", "default_store", "create"]

logger = logging.getLogger(__name__)

MODEL_STORE_ENV = "BENTOLITE_MODEL_STORE"


class ModelStore(Store[Model]):
    """Models under ``<home>/models`` (or ``root``, e.g. a bento's ``models/``)."""

    kind = "Model"
    subdir = "models"
    info_file = MODEL_YAML

    def _load_path(self, path: Path) -> Model:
        return Model.from_path(path)


def default_store() -> ModelStore:
    """The store under the current ``$BENTOLITE_HOME`` (re-read each call).

    ``$BENTOLITE_MODEL_STORE`` names another models directory: serving a bento sets it to
    the bento's ``models/``, so every worker process loads the models the bento carries.
    """
    return ModelStore(bentolite_home(), root=os.environ.get(MODEL_STORE_ENV) or None)


@contextlib.contextmanager
def create(
    name: TagLike,
    *,
    module: str = "",
    api_version: str | None = None,
    signatures: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
    options: ModelOptions | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    external_modules: Sequence[Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    context: ModelContext | None = None,
    _store: ModelStore | None = None,
) -> Iterator[Model]:
    """Stage a new model; write its files into ``model.path`` inside the block.

    On normal exit ``model.yaml`` (and ``custom_objects.pkl``) are written and the model is
    moved into the store atomically; on an exception nothing is saved.
    """
    from .. import __version__

    store = _store or default_store()
    tag = Tag.from_taglike(name)
    if tag.version is None:
        tag = tag.make_new_version()
    elif tag.version == "latest":
        raise BentoMLException("'latest' is reserved and cannot be used as a version")
    str_labels = {}
    for key, value in (labels or {}).items():
        if not isinstance(value, str):
            logger.warning("Label %r: converting %r to a string", key, value)
            value = str(value)
        str_labels[str(key)] = value
    ctx = context or ModelContext()
    if not ctx.bentoml_version:
        ctx = attrs.evolve(ctx, bentoml_version=__version__)
    info = ModelInfo(
        tag=tag,
        module=module,
        labels=str_labels,
        options=options or ModelOptions(),
        metadata=_check_metadata(dict(metadata or {})),
        context=ctx,
        signatures=normalize_signatures(signatures, {}),
        api_version=api_version or "v1",
        creation_time=datetime.now(timezone.utc),
    )
    with store.staging() as staged, _pickled_by_value(external_modules or ()):
        model_dir = staged / "model"
        model_dir.mkdir()
        model = Model(info, model_dir, _internal=True)
        yield model
        info.dump(model_dir)
        if custom_objects:
            import cloudpickle

            (model_dir / CUSTOM_OBJECTS).write_bytes(cloudpickle.dumps(dict(custom_objects)))
        stored = store.commit(model_dir, tag)
    # the caller's object now is the stored model (options rebuilt as get() builds them)
    model._path, model._info = stored.path, stored.info


@contextlib.contextmanager
def _pickled_by_value(modules: Sequence[Any]) -> Iterator[None]:
    """Within the save, cloudpickle pickles these modules' classes by value (as v1 does)."""
    if not modules:
        yield
        return
    import cloudpickle

    for mod in modules:
        cloudpickle.register_pickle_by_value(mod)
    try:
        yield
    finally:
        for mod in modules:
            cloudpickle.unregister_pickle_by_value(mod)


_SIMPLE = (str, int, float, bool, type(None))


def _check_metadata(value: Any, path: str = "metadata") -> Any:
    """Metadata must be JSON-like so that model.yaml stays readable by every tool."""
    if isinstance(value, _SIMPLE):
        return value
    if isinstance(value, (list, tuple)):
        return [_check_metadata(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int, float)):
                raise ValueError(f"{path}: key {key!r} must be a str, int or float")
            out[key] = _check_metadata(item, f"{path}.{key}")
        return out
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    raise ValueError(f"{path}: {type(value).__name__} is not a simple JSON-like value")

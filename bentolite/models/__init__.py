"""``bentolite.models``: the model store API (``create``, ``get``, ``list``, ``delete``, ...)."""
from __future__ import annotations

from ..tag import Tag, TagLike
from .archive import export_model, import_model
from .model import (
    Model,
    ModelContext,
    ModelInfo,
    ModelOptions,
    ModelSignature,
    PartialKwargsModelOptions,
)
from .store import ModelStore, create, default_store

__all__ = [
    "Model",
    "ModelContext",
    "ModelInfo",
    "ModelOptions",
    "ModelSignature",
    "ModelStore",
    "PartialKwargsModelOptions",
    "Tag",
    "create",
    "delete",
    "export_model",
    "get",
    "import_model",
    "list",
]


def get(tag: TagLike) -> Model:
    """A model from the store: ``"name"``, ``"name:latest"``, ``"name:version"`` or a prefix."""
    return default_store().get(tag)


def list(tag: TagLike | None = None) -> "list[Model]":  # noqa: A001 - v1 name
    """All models, or the versions of one name."""
    return default_store().list(tag)


def delete(tag: TagLike) -> None:
    """Delete a model version (``name`` alone means its latest version)."""
    default_store().delete(tag)

"""``bentolite.bentos``: build bentos from bentofile.yaml, keep them in the bento store, export,
import, containerize and serve them, in BentoML 1.x's formats."""
from __future__ import annotations

from ..tag import TagLike
from .archive import export_bento, import_bento
from .bento import Bento, BentoStore, default_bento_store
from .build import build, build_bentofile, service_models
from .build_config import BentoBuildConfig, load_bentofile
from .docker import containerize
from .target import resolve_serve_target

__all__ = [
    "Bento", "BentoBuildConfig", "BentoStore", "build", "build_bentofile", "containerize",
    "default_bento_store", "delete", "export_bento", "get", "import_bento", "list",
    "load_bentofile", "resolve_serve_target", "service_models",
]


def get(tag: TagLike) -> Bento:
    """A bento from the store: ``"name"``, ``"name:latest"``, ``"name:version"`` or a prefix."""
    return default_bento_store().get(tag)


def list(tag: TagLike | None = None) -> "list[Bento]":  # noqa: A001 - BentoML's name
    """All bentos, or the versions of one name."""
    return default_bento_store().list(tag)


def delete(tag: TagLike) -> None:
    """Delete a bento version (``name`` alone means its latest version)."""
    default_bento_store().delete(tag)

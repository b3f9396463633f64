"""Export and import of models: ``.bentomodel`` (a tar.xz of the model dir), tar, zip, folder.

Archives are interchangeable with BentoML 1.x; the safety rules live in ``bentolite.archive``.
"""
from __future__ import annotations

from pathlib import Path

from ..archive import FORMATS as _OTHER_FORMATS
from ..archive import Progress, import_archive, write_archive
from ..exceptions import InvalidArgument
from ..tag import TagLike
from .model import Model, ModelInfo
from .store import ModelStore, default_store

__all__ = ["export_model", "import_model", "FORMATS"]

#: format -> (file extension, tarfile mode or None)
FORMATS: dict[str, tuple[str, str | None]] = {"bentomodel": (".bentomodel", "xz"), **_OTHER_FORMATS}


def export_model(
    tag: TagLike,
    path: str,
    output_format: str | None = None,
    *,
    progress: Progress | None = None,
    _store: ModelStore | None = None,
    **_remote: object,
) -> str:
    """Write model ``tag`` to ``path``; return the path written.

    A directory (existing, or ending in ``/``) gets ``<name>-<version>.<ext>`` inside it.
    """
    if _remote:
        raise InvalidArgument("remote export targets (protocol/user/params) are not supported")
    model = (_store or default_store()).get(tag)
    return write_archive(Path(model.path), path, output_format, native="bentomodel",
                         stem=f"{model.tag.name}-{model.tag.version}", progress=progress)


def import_model(
    path: str,
    input_format: str | None = None,
    *,
    _store: ModelStore | None = None,
    **_remote: object,
) -> Model:
    """Import a model archive (or folder) into the store and return it."""
    if _remote:
        raise InvalidArgument("remote import sources (protocol/user/params) are not supported")
    return import_archive(_store or default_store(), path, input_format, "model archive",
                          lambda dest: ModelInfo.from_path(dest).tag)

"""Export and import of bentos: ``.bento`` (a tar.xz of the bento directory), tar, zip, folder.

The same archives as BentoML 1.x's, models included, so bentos move both ways; the safety
rules (no absolute paths, ``..``, links or devices) are ``bentolite.archive``'s.
"""
from __future__ import annotations

from pathlib import Path

from ..archive import Progress, import_archive, write_archive
from ..exceptions import BentoMLException, NotFound
from ..models.store import ModelStore, default_store
from ..tag import Tag, TagLike
from .bento import MODELS_DIR, Bento, BentoStore, default_bento_store

__all__ = ["export_bento", "import_bento"]


def export_bento(tag: TagLike, path: str = "", output_format: str | None = None, *,
                 progress: Progress | None = None, _store: BentoStore | None = None) -> str:
    """Write bento ``tag`` (with its models) to ``path``; return the path written.

    A directory (existing, or ending in ``/``) gets ``<name>-<version>.bento`` inside it.
    """
    bento = (_store or default_bento_store()).get(tag)
    return write_archive(Path(bento.path), path, output_format, native="bento",
                         stem=f"{bento.tag.name}-{bento.tag.version}", progress=progress)


def _complete_models(bento: Bento, global_store: ModelStore) -> None:
    """Every model bento.yaml lists must be in the bento's models/; take missing ones from
    the model store (a BentoML bento directory may rely on it), else name them."""
    own = ModelStore(global_store.home, root=Path(bento.path) / MODELS_DIR)
    missing = []
    for entry in bento.info.get("models") or []:
        tag = Tag.from_taglike(str(entry["tag"] if isinstance(entry, dict) else entry))
        if own.list(tag):
            continue
        try:
            own.commit_copy(global_store.get(tag).path, tag)
        except NotFound:
            missing.append(str(tag))
    if missing:
        raise BentoMLException(
            f"bento {bento.tag} needs models that are neither in it nor in the model store at "
            f"{global_store.root}: {', '.join(missing)}")


def import_bento(path: str, input_format: str | None = None, *,
                 _store: BentoStore | None = None, _model_store: ModelStore | None = None
                 ) -> Bento:
    """Import a bento archive (or folder) into the store and return it."""
    def check(dest: Path) -> Tag:
        bento = Bento.from_path(dest)
        _complete_models(bento, _model_store or default_store())
        return bento.tag

    return import_archive(_store or default_bento_store(), path, input_format, "bento archive",
                          check)

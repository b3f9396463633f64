"""``Bento`` and the bento store: ``$BENTOLITE_HOME/bentos/<name>/<version>/`` (BentoML 1.x).

A bento directory holds ``bento.yaml``, ``src/`` (the build context's files), ``models/`` (a
model store of the models it serves), ``env/python`` and ``env/docker``, ``apis/openapi.yaml``
and ``README.md``. ``bento.yaml`` keeps BentoML's field names and order, so BentoML reads
bentolite's bentos and bentolite reads BentoML's.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..config import bentolite_home
from ..exceptions import BentoMLException, NotFound
from ..models.store import ModelStore
from ..store import Store
from ..tag import Tag

__all__ = ["Bento", "BentoStore", "BENTO_YAML", "default_bento_store", "read_bento_yaml"]

BENTO_YAML = "bento.yaml"
SRC_DIR = "src"
MODELS_DIR = "models"


def read_bento_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in ``<path>/bento.yaml``, checked for what serving and listing need."""
    file = Path(path, BENTO_YAML)
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise NotFound(f"{file} does not exist") from None
    except yaml.YAMLError as e:
        raise BentoMLException(f"{file} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise BentoMLException(f"{file} must hold a mapping")
    for key in ("service", "name", "version", "creation_time"):
        if not data.get(key):
            raise BentoMLException(f"{file} is missing the {key!r} key")
    data["version"] = str(data["version"])
    try:
        Tag(str(data["name"]), data["version"])
    except ValueError as e:
        raise BentoMLException(f"{file} has an invalid tag: {e}") from None
    created = data["creation_time"]
    if isinstance(created, str):
        try:
            data["creation_time"] = datetime.fromisoformat(created)
        except ValueError:
            raise BentoMLException(f"{file}: creation_time {created!r} is not ISO-8601") from None
    return data


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class Bento:
    """A built bento directory (in the store or anywhere else)."""

    __slots__ = ("_path", "_info")

    def __init__(self, path: str | os.PathLike[str], info: dict[str, Any]) -> None:
        self._path = Path(path)
        self._info = info

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Bento:
        return cls(path, read_bento_yaml(path))

    @property
    def tag(self) -> Tag:
        return Tag(self._info["name"], self._info["version"])

    @property
    def info(self) -> dict[str, Any]:
        """bento.yaml's mapping (``creation_time`` as a datetime)."""
        return self._info

    @property
    def path(self) -> str:
        return str(self._path)

    def path_of(self, item: str) -> str:
        return str(self._path / item)

    @property
    def creation_time(self) -> datetime:
        return self._info["creation_time"]

    @property
    def service(self) -> str:
        """The import string of its service, relative to ``src/``."""
        return str(self._info["service"])

    @property
    def src_dir(self) -> str:
        return self.path_of(SRC_DIR)

    @property
    def model_store(self) -> ModelStore | None:
        """Its own ``models/`` as a model store, or None when it carries no model."""
        store = ModelStore(bentolite_home(), root=self._path / MODELS_DIR)
        return store if store.list() else None

    @property
    def file_size(self) -> int:
        """Bytes of everything but its models."""
        return _tree_size(self._path) - self.model_size

    @property
    def model_size(self) -> int:
        models = self._path / MODELS_DIR
        return _tree_size(models) if models.is_dir() else 0

    def to_dict(self) -> dict[str, Any]:
        """bento.yaml's mapping as written (``creation_time`` as ISO-8601)."""
        return {**self._info, "creation_time": self.creation_time.isoformat()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bento) and other.tag == self.tag

    def __hash__(self) -> int:
        return hash(self.tag)

    def __str__(self) -> str:
        return f'Bento(tag="{self.tag}")'

    def __repr__(self) -> str:
        return f'Bento(tag="{self.tag}", path="{self.path}")'


class BentoStore(Store[Bento]):
    """Bentos under ``<home>/bentos``."""

    kind = "Bento"
    subdir = "bentos"
    info_file = BENTO_YAML

    def _load_path(self, path: Path) -> Bento:
        return Bento.from_path(path)


def default_bento_store() -> BentoStore:
    """The bento store under the current ``$BENTOLITE_HOME`` (re-read each call)."""
    return BentoStore(bentolite_home())

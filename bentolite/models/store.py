"""The filesystem model store: ``$BENTOLITE_HOME/models/<name>/<version>/`` (BentoML 1.x layout).

Writes are atomic: a model is assembled in ``$BENTOLITE_HOME/tmp`` and renamed into place, so
a crash mid-save leaves nothing visible. ``latest`` is rewritten under a per-name lock.
"""
from __future__ import annotations

import contextlib
import difflib
import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import attrs

from ..config import bentolite_home
from ..exceptions import BentoMLException, NotFound
from ..tag import Tag, TagLike
from .model import (
    CUSTOM_OBJECTS,
    Model,
    ModelContext,
    ModelInfo,
    ModelOptions,
    normalize_signatures,
)

__all__ = ["ModelStore", "default_store", "create"]

logger = logging.getLogger(__name__)

_TMP_PREFIX = "bentolite-"
_LATEST = "latest"
_LATEST_RETRIES = 5


class ModelStore:
    """Models under ``<home>/models``; staging under ``<home>/tmp``."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self.root = self.home / "models"
        self.tmp = self.home / "tmp"
        self._locks = self.tmp / ".bentolite-locks"

    def __repr__(self) -> str:
        return f"ModelStore({str(self.home)!r})"

    # housekeeping ---------------------------------------------------------------------
    def _ensure(self) -> None:
        for path in (self.root, self.tmp, self._locks):
            path.mkdir(parents=True, exist_ok=True)

    # A staging dir ``tmp/bentolite-<id>`` is owned by whoever holds an flock on
    # ``tmp/.bentolite-locks/staging-<id>.lock``. The kernel drops the lock when the owner
    # dies, however it dies, so a lock we can take marks litter. Unlike a PID check this
    # holds across PID reuse and across containers sharing one BENTOLITE_HOME.
    def _staging_lock(self, staging_id: str) -> Path:
        return self._locks / f"staging-{staging_id}.lock"

    def clean_stale(self) -> None:
        """Remove staging dirs left by processes that died mid-save."""
        if not self.tmp.is_dir():
            return
        for entry in self.tmp.iterdir():
            if not entry.name.startswith(_TMP_PREFIX):
                continue
            lock = self._staging_lock(entry.name[len(_TMP_PREFIX):])
            try:
                fh = open(lock, "a")
            except OSError:
                continue
            with fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                shutil.rmtree(entry, ignore_errors=True)
                lock.unlink(missing_ok=True)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory on the store's filesystem, removed on exit (or after a crash)."""
        self._ensure()
        self.clean_stale()
        staging_id = uuid.uuid4().hex
        lock = self._staging_lock(staging_id)
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # before the dir exists: a cleaner never sees it unowned
            path = self.tmp / f"{_TMP_PREFIX}{staging_id}"
            path.mkdir()
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)
                lock.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _name_lock(self, name: str) -> Iterator[None]:
        self._ensure()
        with open(self._locks / f"{name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # reading --------------------------------------------------------------------------
    def _versions(self, name: str) -> list[str]:
        base = self.root / name
        if not base.is_dir():
            return []
        return sorted(
            d.name for d in base.iterdir() if d.is_dir() and (d / "model.yaml").is_file()
        )

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and self._versions(d.name))

    def _load(self, name: str, version: str) -> Model:
        return Model.from_path(self.root / name / version)

    def _load_existing(self, name: str, versions: list[str]) -> list[Model]:
        """Load ``versions``, skipping any deleted meanwhile and (with a warning) broken ones."""
        found = []
        for version in versions:
            try:
                found.append(self._load(name, version))
            except NotFound:
                continue
            except BentoMLException as e:  # one bad model.yaml must not hide the whole store
                logger.warning("Skipping model %s:%s: %s", name, version, e)
        return found

    def _newest(self, name: str) -> str | None:
        loaded = self._load_existing(name, self._versions(name))
        if not loaded:
            return None
        return Path(max(loaded, key=lambda m: m.creation_time).path).name  # the dir name

    def _write_latest(self, name: str, version: str | None) -> None:
        target = self.root / name / _LATEST
        for litter in target.parent.glob(".latest-*"):  # from a writer killed mid-write
            litter.unlink(missing_ok=True)  # safe: every writer holds the name lock
        if version is None:
            target.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(dir=self.root / name, prefix=".latest-")
        with os.fdopen(fd, "w") as fh:
            fh.write(version)
        os.replace(tmp, target)

    def _resolve_latest(self, name: str) -> str:
        file = self.root / name / _LATEST
        try:
            version = file.read_text().strip()
            if version and (self.root / name / version / "model.yaml").is_file():
                return version
        except (FileNotFoundError, NotADirectoryError):
            pass
        with self._name_lock(name):  # self-heal a missing or dangling latest
            newest = self._newest(name)
            if newest is None:
                raise self._not_found(Tag(name, None))
            self._write_latest(name, newest)
            return newest

    def _not_found(self, tag: Tag) -> NotFound:
        names = self._names()
        msg = f"Model {str(tag)!r} is not found in the store at {self.root}"
        if tag.version is not None and tag.name in names:
            msg += f"; versions of {tag.name!r}: {', '.join(self._versions(tag.name))}"
        else:
            close = difflib.get_close_matches(tag.name, names, n=3, cutoff=0.5)
            if close:
                msg += f". Did you mean: {', '.join(close)}?"
        return NotFound(msg)

    def get(self, tag: TagLike) -> Model:
        """A model by ``name``, ``name:latest``, ``name:version`` or a version prefix."""
        tag = Tag.from_taglike(tag)
        self.clean_stale()
        if tag.version in (None, _LATEST):
            for attempt in range(_LATEST_RETRIES + 1):
                version = self._resolve_latest(tag.name)  # NotFound here: no version at all
                try:
                    return self._load(tag.name, version)
                except NotFound:  # a concurrent delete won between resolving and loading
                    if attempt == _LATEST_RETRIES:
                        raise
        if (self.root / tag.name / tag.version / "model.yaml").is_file():
            return self._load(tag.name, tag.version)
        matches = [v for v in self._versions(tag.name) if v.startswith(tag.version)]
        if len(matches) == 1:
            return self._load(tag.name, matches[0])
        if len(matches) > 1:
            raise BentoMLException(
                f"version prefix {str(tag)!r} matches several models: {', '.join(matches)}"
            )
        raise self._not_found(tag)

    def list(self, tag: TagLike | None = None) -> list[Model]:
        """All models, the versions of one name, or ``[model]`` for a full tag."""
        self.clean_stale()
        if tag is None:
            return [m for n in self._names() for m in self._load_existing(n, self._versions(n))]
        tag = Tag.from_taglike(tag)
        if tag.version is None:
            if not self._versions(tag.name):
                raise self._not_found(tag)
            return self._load_existing(tag.name, self._versions(tag.name))
        try:
            return [self.get(tag)]
        except NotFound:
            return []

    # writing --------------------------------------------------------------------------
    def commit(self, staged: Path, tag: Tag) -> Model:
        """Move a fully written model directory into the store, atomically."""
        self._ensure()
        assert tag.version is not None
        final = self.root / tag.name / tag.version
        with self._name_lock(tag.name):  # mkdir under the lock: a delete may remove the name dir
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise BentoMLException(f"Model {str(tag)!r} already exists in the store")
            os.rename(staged, final)
            model = self._load(tag.name, tag.version)
            current = self.root / tag.name / _LATEST
            try:
                current_version = current.read_text().strip()
                current_time = self._load(tag.name, current_version).creation_time
            except (FileNotFoundError, NotFound, BentoMLException):
                current_time = None
            if current_time is None or model.creation_time >= current_time:
                self._write_latest(tag.name, tag.version)
        return model

    def delete(self, tag: TagLike) -> None:
        """Delete one version (``name`` or ``name:latest`` means the latest one)."""
        tag = Tag.from_taglike(tag)
        version = tag.version
        if version in (None, _LATEST):
            version = self._resolve_latest(tag.name)
        elif not (self.root / tag.name / version).is_dir():
            version = self.get(tag).tag.version  # allow prefixes, raise NotFound otherwise
        assert version is not None
        with self.staging() as graveyard:  # removed after the lock is released
            with self._name_lock(tag.name):
                if not (self.root / tag.name / version).is_dir():  # a concurrent delete won
                    raise self._not_found(Tag(tag.name, version))
                os.rename(self.root / tag.name / version, graveyard / version)
                remaining = self._newest(tag.name)
                if remaining is None:
                    shutil.rmtree(self.root / tag.name, ignore_errors=True)
                else:
                    self._write_latest(tag.name, remaining)


def default_store() -> ModelStore:
    """The store under the current ``$BENTOLITE_HOME`` (re-read each call)."""
    return ModelStore(bentolite_home())


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
    elif tag.version == _LATEST:
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

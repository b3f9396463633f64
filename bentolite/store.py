"""The filesystem store shared by models and bentos: ``<root>/<name>/<version>/`` (BentoML 1.x).

Writes are atomic: an item is assembled in ``$BENTOLITE_HOME/tmp`` and renamed into place, so
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
from datetime import datetime
from pathlib import Path
from typing import Generic, Iterator, Protocol, TypeVar

from .exceptions import BentoMLException, NotFound
from .tag import Tag, TagLike

__all__ = ["Store", "StoreItem"]

logger = logging.getLogger(__name__)

_TMP_PREFIX = "bentolite-"
_LATEST = "latest"
_LATEST_RETRIES = 5


class StoreItem(Protocol):
    @property
    def tag(self) -> Tag: ...
    @property
    def path(self) -> str: ...
    @property
    def creation_time(self) -> datetime: ...


ItemT = TypeVar("ItemT", bound=StoreItem)


class Store(Generic[ItemT]):
    """Items under ``<home>/<subdir>`` (or ``root``); staging under ``<home>/tmp``.

    A subclass names the item (``kind``), its directory (``subdir``), the file that marks a
    complete item (``info_file``) and how to load one (``_load_path``).
    """

    kind = "Item"
    subdir = "items"
    info_file = "item.yaml"

    def __init__(self, home: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
                 ) -> None:
        self.home = Path(home)
        self.root = Path(root) if root is not None else self.home / self.subdir
        self.tmp = self.home / "tmp"
        self._locks = self.tmp / ".bentolite-locks"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    def _load_path(self, path: Path) -> ItemT:
        raise NotImplementedError

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
        with open(self._locks / f"{self.subdir}-{name}.lock", "a") as fh:
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
            d.name for d in base.iterdir() if d.is_dir() and (d / self.info_file).is_file()
        )

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and self._versions(d.name))

    def _load(self, name: str, version: str) -> ItemT:
        return self._load_path(self.root / name / version)

    def _load_existing(self, name: str, versions: list[str]) -> list[ItemT]:
        """Load ``versions``, skipping any deleted meanwhile and (with a warning) broken ones."""
        found = []
        for version in versions:
            try:
                found.append(self._load(name, version))
            except NotFound:
                continue
            except BentoMLException as e:  # one bad item must not hide the whole store
                logger.warning("Skipping %s %s:%s: %s", self.kind.lower(), name, version, e)
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
            if version and (self.root / name / version / self.info_file).is_file():
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
        msg = f"{self.kind} {str(tag)!r} is not found in the store at {self.root}"
        if tag.version is not None and tag.name in names:
            msg += f"; versions of {tag.name!r}: {', '.join(self._versions(tag.name))}"
        else:
            close = difflib.get_close_matches(tag.name, names, n=3, cutoff=0.5)
            if close:
                msg += f". Did you mean: {', '.join(close)}?"
        return NotFound(msg)

    def get(self, tag: TagLike) -> ItemT:
        """An item by ``name``, ``name:latest``, ``name:version`` or a version prefix."""
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
        if (self.root / tag.name / tag.version / self.info_file).is_file():
            return self._load(tag.name, tag.version)
        matches = [v for v in self._versions(tag.name) if v.startswith(tag.version)]
        if len(matches) == 1:
            return self._load(tag.name, matches[0])
        if len(matches) > 1:
            raise BentoMLException(
                f"version prefix {str(tag)!r} matches several {self.subdir}: {', '.join(matches)}"
            )
        raise self._not_found(tag)

    def list(self, tag: TagLike | None = None) -> list[ItemT]:
        """All items, the versions of one name, or ``[item]`` for a full tag."""
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
    def commit(self, staged: Path, tag: Tag) -> ItemT:
        """Move a fully written item directory into the store, atomically."""
        self._ensure()
        assert tag.version is not None
        final = self.root / tag.name / tag.version
        with self._name_lock(tag.name):  # mkdir under the lock: a delete may remove the name dir
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise BentoMLException(f"{self.kind} {str(tag)!r} already exists in the store")
            os.rename(staged, final)
            item = self._load(tag.name, tag.version)
            current = self.root / tag.name / _LATEST
            try:
                current_version = current.read_text().strip()
                current_time = self._load(tag.name, current_version).creation_time
            except (FileNotFoundError, NotFound, BentoMLException):
                current_time = None
            if current_time is None or item.creation_time >= current_time:
                self._write_latest(tag.name, tag.version)
        return item

    def commit_copy(self, src: str | os.PathLike[str], tag: Tag) -> ItemT:
        """Copy a complete item directory (no links) into the store, atomically."""
        with self.staging() as staged:
            copied = staged / "item"
            shutil.copytree(src, copied, symlinks=True)
            for path in copied.rglob("*"):
                if path.is_symlink():
                    raise BentoMLException(f"refusing {path.name!r} in {src}: symbolic link")
            return self.commit(copied, tag)

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

"""Export and import of models: ``.bentomodel`` (a tar.xz of the model dir), tar, zip, folder.

Archives are interchangeable with BentoML 1.x. Import refuses any member that would land
outside its target (absolute paths, ``..``, links, devices) before writing anything.
"""
from __future__ import annotations

import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from ..exceptions import BentoMLException, InvalidArgument
from ..tag import TagLike
from .model import Model, ModelInfo
from .store import ModelStore, default_store

__all__ = ["export_model", "import_model", "FORMATS"]

#: format -> (file extension, tarfile mode or None)
FORMATS: dict[str, tuple[str, str | None]] = {
    "bentomodel": (".bentomodel", "xz"),
    "gz": (".gz", "gz"),
    "xz": (".xz", "xz"),
    "bz2": (".bz2", "bz2"),
    "tar": (".tar", ""),
    "zip": (".zip", None),
    "folder": ("", None),
}

Progress = Callable[[int, int], None]

#: what a damaged archive raises while being read (EOFError: a truncated compressed stream)
_CORRUPT_ARCHIVE = (
    tarfile.TarError, zipfile.BadZipFile, EOFError, lzma.LZMAError, zlib.error, OSError,
)


def _guess_format(path: str, explicit: str | None) -> str:
    if explicit:
        fmt = explicit.lstrip(".").lower()
        if fmt not in FORMATS:
            raise InvalidArgument(f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lstrip(".").lower()
    return suffix if suffix in FORMATS and suffix != "folder" else "bentomodel"


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
    fmt = _guess_format(path, output_format)
    ext, mode = FORMATS[fmt]
    target = Path(os.path.expanduser(path or "."))
    if path == "" or path.endswith("/") or target.is_dir():
        target = target / f"{model.tag.name}-{model.tag.version}{ext}"
    elif fmt == "bentomodel" and target.suffix != ext:
        target = target.with_name(target.name + ext)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = Path(model.path)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    done = 0
    partial = target.with_name(f".{target.name}.partial")
    try:
        if fmt == "folder":
            shutil.copytree(src, partial)
        elif mode is None:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in files:
                    zf.write(p, p.relative_to(src).as_posix())
                    done += p.stat().st_size
                    progress and progress(done, total)
        else:
            with tarfile.open(partial, f"w:{mode}" if mode else "w") as tf:
                for p in files:
                    tf.add(p, p.relative_to(src).as_posix(), recursive=False)
                    done += p.stat().st_size
                    progress and progress(done, total)
        if target.is_dir() and fmt == "folder":
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        elif partial.exists():
            partial.unlink()
    return str(target)


def _safe_member(name: str) -> PurePosixPath:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise BentoMLException(f"refusing archive member {name!r}: absolute path")
    rel = PurePosixPath(name.replace("\\", "/"))
    if ".." in rel.parts:
        raise BentoMLException(f"refusing archive member {name!r}: '..' leaves the target")
    return rel


def _extract_tar(path: Path, dest: Path) -> None:
    with tarfile.open(path, "r:*") as tf:
        members = tf.getmembers()
        for m in members:  # check everything before writing anything
            _safe_member(m.name)
            if not (m.isfile() or m.isdir()):
                raise BentoMLException(
                    f"refusing archive member {m.name!r}: links and special files are not allowed"
                )
        for m in members:
            out = dest / _safe_member(m.name)
            if m.isdir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            assert src is not None
            with src, open(out, "wb") as fh:
                shutil.copyfileobj(src, fh)


def _extract_zip(path: Path, dest: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        for info in infos:
            _safe_member(info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BentoMLException(f"refusing archive member {info.filename!r}: symbolic link")
        for info in infos:
            out = dest / _safe_member(info.filename)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as fh:
                shutil.copyfileobj(src, fh)


def _copy_folder(path: Path, dest: Path) -> None:
    for p in path.rglob("*"):
        if p.is_symlink():
            raise BentoMLException(f"refusing {p}: symbolic links are not allowed in a model folder")
    shutil.copytree(path, dest, dirs_exist_ok=True)


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
    store = _store or default_store()
    src = Path(os.path.expanduser(path))
    if not src.exists():
        raise BentoMLException(f"{path} does not exist")
    with store.staging() as staged:
        dest = staged / "model"
        dest.mkdir()
        if src.is_dir():
            _copy_folder(src, dest)
        else:
            try:
                if zipfile.is_zipfile(src) and input_format in (None, "zip"):
                    _extract_zip(src, dest)
                else:
                    _extract_tar(src, dest)
            except _CORRUPT_ARCHIVE as e:  # truncated or damaged: say so, not "Aborted!"
                reason = str(e) or type(e).__name__
                raise BentoMLException(f"{path} is not a readable model archive: {reason}") from None
        info = ModelInfo.from_path(dest)
        return store.commit(dest, info.tag)

"""Archives of store items (models, bentos): a tar (xz, gz, bz2 or plain), a zip, or a folder.

Export writes next to the target and renames, so a half-written archive is never visible.
Extraction refuses any member that would land outside its target (absolute paths, ``..``,
links, devices) before writing anything.
"""
from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from .exceptions import BentoMLException, InvalidArgument

__all__ = ["FORMATS", "Progress", "write_archive", "extract_archive", "import_archive"]

#: format -> (file extension, tarfile mode or None); the native format is added per kind
FORMATS: dict[str, tuple[str, str | None]] = {
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


def _guess_format(path: str, explicit: str | None, native: str) -> str:
    known = {native, *FORMATS}
    if explicit:
        fmt = explicit.lstrip(".").lower()
        if fmt not in known:
            raise InvalidArgument(f"unknown format {explicit!r}; use one of {', '.join(sorted(known))}")
        return fmt
    suffix = Path(path).suffix.lstrip(".").lower()
    return suffix if suffix in known and suffix != "folder" else native


def write_archive(src: Path, path: str, output_format: str | None, *, native: str, stem: str,
                  progress: Progress | None = None, skip: Callable[[Path], bool] | None = None
                  ) -> str:
    """Write the contents of ``src`` to ``path``; return the path written.

    ``native`` is the kind's own xz-tar format (``bentomodel``, ``bento``), the default. A
    directory target (existing, or ending in ``/``) gets ``<stem>.<ext>`` inside it.
    """
    fmt = _guess_format(path, output_format, native)
    ext, mode = FORMATS.get(fmt, (f".{native}", "xz"))
    target = Path(os.path.expanduser(path or "."))
    if path == "" or path.endswith("/") or target.is_dir():
        target = target / f"{stem}{ext}"
    elif fmt == native and target.suffix != ext:
        target = target.with_name(target.name + ext)
    target.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.rglob("*") if p.is_file() and not (skip and skip(p)))
    total = sum(p.stat().st_size for p in files)
    done = 0
    partial = target.with_name(f".{target.name}.partial")
    try:
        with contextlib.ExitStack() as stack:
            if fmt == "folder":
                partial.mkdir()
                add = lambda p, name: _copy_file(p, partial / name)  # noqa: E731
            elif mode is None:
                zf = stack.enter_context(zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED))
                add = zf.write
            else:
                tf = stack.enter_context(tarfile.open(partial, f"w:{mode}" if mode else "w"))
                add = lambda p, name: tf.add(p, name, recursive=False)  # noqa: E731
            for p in files:
                add(p, p.relative_to(src).as_posix())
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


def _copy_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


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
            if m.mode & 0o111:  # keep scripts (entrypoint.sh, setup_script) executable
                out.chmod(0o755)


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
            raise BentoMLException(f"refusing {p}: symbolic links are not allowed in an archive folder")
    shutil.copytree(path, dest, dirs_exist_ok=True)


def extract_archive(path: str, dest: Path, input_format: str | None = None,
                    what: str = "archive") -> None:
    """Unpack archive (or folder) ``path`` into the existing directory ``dest``."""
    src = Path(os.path.expanduser(path))
    if not src.exists():
        raise BentoMLException(f"{path} does not exist")
    if src.is_dir():
        _copy_folder(src, dest)
        return
    try:
        if zipfile.is_zipfile(src) and input_format in (None, "zip"):
            _extract_zip(src, dest)
        else:
            _extract_tar(src, dest)
    except _CORRUPT_ARCHIVE as e:  # truncated or damaged: say so, not "Aborted!"
        reason = str(e) or type(e).__name__
        raise BentoMLException(f"{path} is not a readable {what}: {reason}") from None


def import_archive(store: Any, path: str, input_format: str | None, what: str,
                   check: Callable[[Path], Any]) -> Any:
    """Unpack ``path`` into ``store``'s staging, let ``check(dir)`` read (and complete) the
    item and return its tag, then commit it to the store atomically."""
    with store.staging() as staged:
        dest = staged / "item"
        dest.mkdir()
        extract_archive(path, dest, input_format, what=what)
        return store.commit(dest, check(dest))

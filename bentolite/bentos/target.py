"""What ``bentolite serve TARGET`` serves when TARGET names a bento or a project directory."""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

from ..exceptions import BentoMLException, NotFound
from ..models.store import MODEL_STORE_ENV
from ..tag import Tag
from .bento import BENTO_YAML, Bento, default_bento_store

__all__ = ["find_bento", "resolve_serve_target"]

logger = logging.getLogger(__name__)


def _use_bento(bento: Bento) -> tuple[str, str]:
    store = bento.model_store
    if store is not None:  # as BentoML: the bento's own models/ when it carries any
        os.environ[MODEL_STORE_ENV] = str(store.root)
    logger.info("serving bento %s from %s", bento.tag, bento.path)
    return bento.service, bento.src_dir


def _is_module(target: str, working_dir: str) -> bool:
    """Whether ``target``'s module part can be imported (found without running it)."""
    module = target.partition(":")[0]
    if module.endswith(".py") or "/" in module or os.sep in module:
        return True
    top = module.split(".")[0]
    if (Path(working_dir) / f"{top}.py").is_file() or (Path(working_dir) / top).is_dir():
        return True
    sys.path.insert(0, str(Path(working_dir).resolve()))
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False
    finally:
        sys.path.pop(0)


def find_bento(target: str, working_dir: str = ".") -> Bento | None:
    """The bento TARGET names: a bento directory (``bento.yaml``) or a tag in the store
    (``name[:version]``); None for a project directory or an importable module."""
    path = Path(os.path.expanduser(target))
    if path.is_dir():
        return Bento.from_path(path.resolve()) if (path / BENTO_YAML).is_file() else None
    if _is_module(target, working_dir):
        return None
    try:
        tag = Tag.from_str(target)
    except (BentoMLException, ValueError):
        return None  # not a tag either: the loader says what is wrong
    try:
        return default_bento_store().get(tag)
    except NotFound as e:
        raise BentoMLException(
            f"{target!r} is neither a module in {str(Path(working_dir).resolve())!r} nor a "
            f"bento in the store ({e})") from None


def resolve_serve_target(target: str, working_dir: str = ".") -> tuple[str, str]:
    """``(import string, working dir)`` for TARGET.

    TARGET is a bento directory (``bento.yaml``: its ``src/``), a project directory
    (``bentofile.yaml``'s ``service``, else its ``service.py``), a ``module[:attr]`` / ``file.py[:attr]`` (as
    given), or a bento tag in the store (``name[:version]``). For a bento, its ``models/``
    becomes the model store of this process and of every worker it starts.
    """
    bento = find_bento(target, working_dir)
    if bento is not None:
        return _use_bento(bento)
    path = Path(os.path.expanduser(target))
    if path.is_dir():
        from ..services.loader import service_in_directory  # not in the supervisor otherwise

        return service_in_directory(path.resolve()), str(path.resolve())
    return target, working_dir

"""Find the Service named by ``module:attr``, ``module``, ``file.py`` or ``file.py:attr``."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ImportServiceError
from .service import Service

__all__ = ["load", "import_service"]


def _module_name_for_file(path: Path) -> tuple[str, Path]:
    """Dotted module name for a .py file and the directory to put on sys.path."""
    path = path.resolve()
    parts = [path.stem]
    parent = path.parent
    while (parent / "__init__.py").exists():
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts), parent


def import_service(target: str, working_dir: str | os.PathLike[str] | None = None) -> Service:
    """Import ``target`` with ``working_dir`` (default ".") first on sys.path; return its Service."""
    if not isinstance(target, str) or not target.strip():
        raise ImportServiceError(f"expected 'module:attr' or 'file.py[:attr]', got {target!r}")
    base = Path(working_dir or ".").resolve()
    if not base.is_dir():
        raise ImportServiceError(f"working directory {str(base)!r} does not exist")
    module_part, _, attr = target.partition(":")
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        file_path = (base / module_part).resolve()
        if file_path.is_dir():
            raise ImportServiceError(
                f"{target!r} is a directory; give 'module:attr' or 'file.py:attr' "
                "(bentofile/bento directories are not supported yet)"
            )
        if not file_path.exists():
            raise ImportServiceError(f"service file {str(file_path)!r} not found")
        module_name, import_root = _module_name_for_file(file_path)
    else:
        module_name, import_root = module_part, base
    for root in (str(import_root), str(base)):
        if root not in sys.path:
            sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if getattr(exc, "name", None) and module_name.startswith(exc.name or "\0"):
            raise ImportServiceError(
                f"cannot import module {module_name!r} for {target!r} from {str(base)!r}: {exc}"
            ) from exc
        raise  # an import error inside the user's module: show it as is
    if attr:
        obj: Any = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ImportServiceError(
                    f"module {module_name!r} has no attribute {attr!r}"
                ) from None
        if not isinstance(obj, Service):
            raise ImportServiceError(
                f"{target!r} is a {type(obj).__name__}, not a bentolite.Service"
            )
        return obj
    found = [(name, v) for name, v in vars(module).items() if isinstance(v, Service)]
    if not found:
        raise ImportServiceError(f"no Service instance found in module {module_name!r}")
    if len(found) > 1:
        names = ", ".join(sorted(name for name, _ in found))
        raise ImportServiceError(
            f"Multiple Service instances found in module {module_name!r} ({names}); "
            f"name one as '{module_part}:<attr>'"
        )
    return found[0][1]


def load(target: str, working_dir: str | os.PathLike[str] | None = None) -> Service:
    """Load a Service from ``module[:attr]`` or ``path/to/file.py[:attr]`` (v1 ``bentoml.load``)."""
    service = import_service(target, working_dir)
    service.import_string = target
    service.working_dir = str(Path(working_dir or ".").resolve())
    return service

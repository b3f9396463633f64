"""Find the Service named by ``module:attr``, ``module``, ``file.py`` or ``file.py:attr``.

A new-style ``@bentolite.service`` class is returned as the v1 Service the engine serves
(``ServiceDefinition.as_service``); without ``:attr`` its root (the service nothing in the
module depends on) is picked, as BentoML does.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from ..exceptions import ImportServiceError
from .definition import ServiceDefinition
from .service import Service

__all__ = ["load", "import_service", "importing"]


def _module_name_for_file(path: Path) -> tuple[str, Path]:
    """Dotted module name for a .py file and the directory to put on sys.path."""
    path = path.resolve()
    parts = [path.stem]
    parent = path.parent
    while (parent / "__init__.py").exists():
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts), parent


def service_in_directory(path: Path) -> str:
    """The service a project directory names: bentofile.yaml's ``service:``, else
    ``service.py`` (as ``bentoml serve .`` picks it)."""
    from ..bentos.build_config import DEFAULT_BENTOFILE, load_bentofile

    if (path / DEFAULT_BENTOFILE).is_file():
        return load_bentofile(path / DEFAULT_BENTOFILE).service
    if (path / "service.py").is_file():
        return "service.py"
    raise ImportServiceError(
        f"{str(path)!r} has neither a bentofile.yaml nor a service.py (nor a bento.yaml): "
        "serve a project or bento directory, MODULE[:ATTR] or a bento tag")


def import_service(target: str, working_dir: str | os.PathLike[str] | None = None) -> Service:
    """Import ``target`` with ``working_dir`` (default ".") first on sys.path; return its Service."""
    if not isinstance(target, str) or not target.strip():
        raise ImportServiceError(f"expected 'module:attr' or 'file.py[:attr]', got {target!r}")
    base = Path(working_dir or ".").resolve()
    if not base.is_dir():
        raise ImportServiceError(f"working directory {str(base)!r} does not exist")
    if ":" not in target and (base / target).is_dir():  # `serve .`: a project directory
        base = (base / target).resolve()
        target = service_in_directory(base)
    module_part, _, attr = target.partition(":")
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        file_path = (base / module_part).resolve()
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
        if isinstance(obj, ServiceDefinition):
            return obj.as_service()
        if not isinstance(obj, Service):
            raise ImportServiceError(
                f"{target!r} is a {type(obj).__name__}, not a bentolite.Service or a "
                "@bentolite.service class"
            )
        return obj
    found = [(name, v) for name, v in vars(module).items() if isinstance(v, Service)]
    roots = _root_services(module)
    if len(found) + len(roots) > 1:
        names = ", ".join(sorted([name for name, _ in found] + [d.inner.__name__ for d in roots]))
        raise ImportServiceError(
            f"Multiple services found in module {module_name!r} ({names}); "
            f"name one as '{module_part}:<attr>'"
        )
    if roots:
        return roots[0].as_service()
    if not found:
        raise ImportServiceError(f"no Service instance or @bentolite.service class found in "
                                 f"module {module_name!r}")
    return found[0][1]


def _root_services(module: Any) -> list[ServiceDefinition[Any]]:
    """The new-style services of ``module`` that no other service there depends on."""
    defined = [v for v in vars(module).values() if isinstance(v, ServiceDefinition)]
    needed = {id(dep.on) for d in defined for dep in d.dependencies.values()}
    return [d for d in defined if id(d) not in needed]


def load(target: str, working_dir: str | os.PathLike[str] | None = None) -> Service:
    """Load a Service from ``module[:attr]`` or ``path/to/file.py[:attr]`` (v1 ``bentoml.load``);
    new-style services come back as the v1 Service that serves them."""
    service = import_service(target, working_dir)
    base = Path(working_dir or ".").resolve()
    if ":" not in target and (base / target).is_dir():
        base = (base / target).resolve()
        target = service_in_directory(base)
    service.import_string = target
    service.working_dir = str(base)
    return service


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """Let imports in this block fail where the service is only inspected (build, the
    supervisor's planning); in the processes that serve it they must succeed."""
    from ..runner.process import PARENT_PID_ENV

    try:
        yield
    except ImportError as exc:
        if os.environ.get(PARENT_PID_ENV):  # a worker started by the supervisor
            raise
        logging.getLogger("bentolite.services").info(
            "skipping the import of %s: not available here", exc.name)

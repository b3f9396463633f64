"""``bentolite build``: a build context and its bentofile.yaml -> a bento in the store.

The service is imported once, to check it loads and to read its name, runners, APIs and
models; the bento is assembled in the store's staging area and renamed into place.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import attrs
import yaml

from ..exceptions import BentoMLException, InvalidArgument
from ..models.store import ModelStore, default_store
from ..tag import Tag
from .bento import BENTO_YAML, MODELS_DIR, SRC_DIR, Bento, BentoStore, default_bento_store
from .build_config import DEFAULT_BENTOFILE, BentoBuildConfig, load_bentofile
from .docker import write_env
from .patterns import context_files

__all__ = ["build", "build_bentofile", "service_models"]

logger = logging.getLogger(__name__)


def service_models(svc: Any) -> list[Any]:
    """The models a bento of ``svc`` carries by default: ``Service(models=...)`` and every
    runner's ``models``, each once, in that order."""
    found: dict[Any, Any] = {}
    for model in [*svc.models, *(m for runner in svc.runners for m in runner.models)]:
        found.setdefault(model.tag, model)
    return list(found.values())


@contextlib.contextmanager
def _imported_from(build_ctx: Path) -> Iterator[None]:
    """Forget the modules imported from the build context afterwards, so that the next build
    in this process (another context, same module names) imports its own."""
    path, before = list(sys.path), set(sys.modules)
    try:
        yield
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(f"{build_ctx}{os.sep}"):
                del sys.modules[name]


def _service_facts(service: str, build_ctx: Path) -> dict[str, Any]:
    """Import the service (the one call into the loader) and take what the bento records."""
    from ..services.loader import load

    with _imported_from(build_ctx):
        try:
            svc = load(service, build_ctx)
        except BentoMLException:
            raise
        except Exception as e:  # the user's module failed: name the error, keep it one line
            raise BentoMLException(
                f"cannot build: importing {service!r} from {build_ctx} failed: "
                f"{type(e).__name__}: {e}") from e
        return {
            "name": svc.name,
            "models": service_models(svc),
            "runners": [{
                "name": r.name,
                "runnable_type": r.runnable_class.__name__,
                "embedded": bool(r.embedded),
                "models": [str(m.tag) for m in r.models],
                "resource_config": r.resource_config,
            } for r in svc.runners],
            "apis": [{"name": api.name, "input_type": type(api.input).__name__,
                      "output_type": type(api.output).__name__} for api in svc.apis.values()],
            "openapi": svc.openapi_spec,
        }


def _requirements(config: BentoBuildConfig, build_ctx: Path) -> str | None:
    python = config.python
    if python.requirements_txt is not None:
        return "".join(_requirement_lines(build_ctx / python.requirements_txt))
    if python.packages is not None:
        return "\n".join(python.packages) + "\n"
    return None


def _requirement_lines(file: Path, seen: frozenset[Path] = frozenset()) -> Iterator[str]:
    """A requirements file with its ``-r`` includes inlined and ``-c`` constraints dropped."""
    if not file.is_file():
        raise InvalidArgument(f"python.requirements_txt: {str(file)!r} does not exist")
    if file.resolve() in seen:
        return
    for line in file.read_text().splitlines():
        words = line.split()
        if words[:1] in (["-r"], ["--requirement"]) and len(words) == 2:
            yield from _requirement_lines(file.parent / words[1], seen | {file.resolve()})
        elif words[:1] not in (["-c"], ["--constraint"]):
            yield line + "\n"


def _readme(description: str | None, build_ctx: Path, tag: Tag, apis: list[dict[str, Any]]) -> str:
    if description is not None:
        if description.startswith("file:"):
            file = build_ctx / description[5:].strip()
            if not file.is_file():
                raise InvalidArgument(f"description: {str(file)!r} does not exist")
            return file.read_text()
        return description
    from .. import __version__

    rows = "\n".join(f"| POST `/{a['name']}` | {a['input_type']} | {a['output_type']} |"
                     for a in apis)
    return (f"# {tag}\n\nA bento built by bentolite {__version__}. Serve it with "
            f"`bentolite serve {tag}`.\n\n| API | Input | Output |\n| --- | --- | --- |\n{rows}\n")


def _copy_setup_files(config: BentoBuildConfig, build_ctx: Path, bento_dir: Path) -> None:
    if config.docker.setup_script:
        script = build_ctx / config.docker.setup_script
        if not script.is_file():
            raise InvalidArgument(f"docker.setup_script: {str(script)!r} does not exist")
        if not os.access(script, os.X_OK):
            raise InvalidArgument(f"docker.setup_script: {str(script)!r} is not executable "
                                  f"(give it a shebang line and run chmod +x on it)")
        shutil.copy2(script, bento_dir / "env" / "docker" / "setup_script")
    for wheel in config.python.wheels or ():
        source = build_ctx / wheel
        if not source.is_file():
            raise InvalidArgument(f"python.wheels: {str(source)!r} does not exist")
        target = bento_dir / "env" / "python" / "wheels" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def build(config: BentoBuildConfig, build_ctx: str | os.PathLike[str] = ".", *,
          version: str | None = None, _store: BentoStore | None = None,
          _model_store: ModelStore | None = None) -> Bento:
    """Build a bento from ``config`` with ``build_ctx`` as the project directory."""
    ctx = Path(os.path.expanduser(build_ctx)).resolve()
    if not ctx.is_dir():
        raise InvalidArgument(f"build context {str(ctx)!r} is not a directory")
    if any(p.startswith("../") for p in config.include or ()):
        raise InvalidArgument("include: paths outside the build context cannot be included")
    config = config.with_defaults()
    facts = _service_facts(config.service, ctx)
    model_store = _model_store or default_store()
    models = ([model_store.get(spec.tag) for spec in config.models] if config.models
              else facts["models"])
    tag = Tag(config.name or facts["name"], version)
    if tag.version is None:
        tag = tag.make_new_version()
    elif tag.version == "latest":
        raise InvalidArgument("'latest' is reserved and cannot be used as a version")
    store = _store or default_bento_store()
    with store.staging() as staged:
        bento_dir = staged / "bento"
        src = bento_dir / SRC_DIR
        for rel in context_files(ctx, config.include, config.exclude):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ctx / rel, src / rel)
        src.mkdir(parents=True, exist_ok=True)
        bento_models = ModelStore(model_store.home, root=bento_dir / MODELS_DIR)
        for model in models:
            bento_models.commit_copy(model.path, model.tag)
        py_dir = bento_dir / "env" / "python"
        py_dir.mkdir(parents=True)
        (py_dir / "version.txt").write_text("{}.{}.{}".format(*sys.version_info[:3]))
        requirements = _requirements(config, ctx)
        if requirements is not None:
            (py_dir / "requirements.txt").write_text(requirements)
        (bento_dir / "apis").mkdir()
        (bento_dir / "apis" / "openapi.yaml").write_text(yaml.safe_dump(facts["openapi"]))
        (bento_dir / "README.md").write_text(_readme(config.description, ctx, tag, facts["apis"]))
        info = _bento_yaml(config, tag, facts, models)
        write_env(bento_dir, info)
        _copy_setup_files(config, ctx, bento_dir)
        (bento_dir / BENTO_YAML).write_text(yaml.safe_dump(info, sort_keys=False))
        return store.commit(bento_dir, tag)


def _bento_yaml(config: BentoBuildConfig, tag: Tag, facts: dict[str, Any],
                models: list[Any]) -> dict[str, Any]:
    """bento.yaml's fields, in BentoML 1.x's order."""
    from .. import __version__

    info: dict[str, Any] = {
        "service": config.service,
        "name": tag.name,
        "version": tag.version,
        "bentoml_version": __version__,
        "creation_time": datetime.now(timezone.utc).isoformat(),
        "labels": {str(k): str(v) for k, v in (config.labels or {}).items()},
        "models": [{"tag": str(m.tag), "module": m.info.module,
                    "creation_time": m.info.creation_time.isoformat()} for m in models],
        "runners": facts["runners"],
        "apis": facts["apis"],
        "docker": attrs.asdict(config.docker),
        "python": attrs.asdict(config.python),
        "conda": attrs.asdict(config.conda),
    }
    if config.envs:  # BentoML 1.2+'s key; 1.1 ignores it
        info["envs"] = [attrs.asdict(e) for e in config.envs]
    return info


def build_bentofile(bentofile: str = DEFAULT_BENTOFILE, *, version: str | None = None,
                    build_ctx: str | os.PathLike[str] = ".") -> Bento:
    """Build from a bentofile: relative to ``build_ctx`` first, else as a path."""
    path = Path(build_ctx, os.path.expanduser(bentofile))
    if not path.is_file():
        path = Path(os.path.expanduser(bentofile))
    return build(load_bentofile(path), build_ctx, version=version)

"""``bentofile.yaml``: BentoML 1.x's build options as attrs records, structured by cattrs.

Unknown keys are refused with their dotted path (``docker.bogus: unknown key``); options
bentolite cannot honour (conda, CUDA base images, Dockerfile templates, model aliases) are
accepted by the parser and refused with a sentence saying what to do instead.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import attrs
import yaml

from ..config import _structure
from ..exceptions import BentoMLConfigException, InvalidArgument

__all__ = [
    "BentoBuildConfig", "CondaOptions", "DockerOptions", "EnvVar", "ModelSpec", "PythonOptions",
    "load_bentofile", "parse_bentofile", "DEFAULT_BENTOFILE",
]

DEFAULT_BENTOFILE = "bentofile.yaml"
_PYTHON_VERSION = re.compile(r"3\.\d{1,2}(\.\d+)?")
_ENV_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


@attrs.define
class PythonOptions:
    """``python:``; written to bento.yaml with every key, None where unset (as BentoML)."""

    requirements_txt: Optional[str] = None
    packages: Optional[list[str]] = None
    lock_packages: Optional[bool] = None
    index_url: Optional[str] = None
    no_index: Optional[bool] = None
    trusted_host: Optional[list[str]] = None
    find_links: Optional[list[str]] = None
    extra_index_url: Optional[list[str]] = None
    pip_args: Optional[str] = None
    wheels: Optional[list[str]] = None

    def pip_options(self) -> list[str]:
        """The index options every ``pip install`` of the bento's requirements gets."""
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for host in self.trusted_host or ():
            args += ["--trusted-host", host]
        for link in self.find_links or ():
            args += ["--find-links", link]
        for url in self.extra_index_url or ():
            args += ["--extra-index-url", url]
        if self.no_index:
            args.append("--no-index")
        return args + (self.pip_args or "").split()


@attrs.define
class DockerOptions:
    distro: Optional[str] = None
    python_version: Optional[str] = None
    cuda_version: Optional[str] = None
    env: Optional[dict[str, str]] = None
    system_packages: Optional[list[str]] = None
    setup_script: Optional[str] = None
    base_image: Optional[str] = None
    dockerfile_template: Optional[str] = None


@attrs.define
class CondaOptions:
    environment_yml: Optional[str] = None
    channels: Optional[list[str]] = None
    dependencies: Optional[list[Any]] = None
    pip: Optional[list[str]] = None

    def is_empty(self) -> bool:
        return not (self.environment_yml or self.channels or self.dependencies or self.pip)


@attrs.define
class ModelSpec:
    tag: str
    filter: Optional[str] = None
    alias: Optional[str] = None


@attrs.define
class EnvVar:
    """``envs:`` item (BentoML 1.2+): set in the image; ``value`` None means from the host."""

    name: str
    value: Optional[str] = None


@attrs.define
class BentoBuildConfig:
    service: str
    name: Optional[str] = None
    description: Optional[str] = None
    labels: Optional[dict[str, Any]] = None
    include: Optional[list[str]] = None
    exclude: Optional[list[str]] = None
    docker: DockerOptions = attrs.Factory(DockerOptions)
    python: PythonOptions = attrs.Factory(PythonOptions)
    conda: CondaOptions = attrs.Factory(CondaOptions)
    models: list[ModelSpec] = attrs.Factory(list)
    envs: list[EnvVar] = attrs.Factory(list)

    def with_defaults(self) -> BentoBuildConfig:
        """Fill what BentoML fills at build time: include everything, the build's Python."""
        import sys

        docker = self.docker
        if docker.base_image is None:
            docker = attrs.evolve(
                docker, distro=docker.distro or "debian",
                python_version=docker.python_version or "{}.{}".format(*sys.version_info[:2]))
        python = self.python
        if python.requirements_txt is None and python.lock_packages is None:
            python = attrs.evolve(python, lock_packages=False)  # see docs/migration.md
        return attrs.evolve(self, include=self.include or ["*"], exclude=self.exclude or [],
                            labels=self.labels or {}, docker=docker, python=python)


def _env_mapping(value: Any, path: str, base: Path) -> dict[str, str] | None:
    """``docker.env`` as BentoML takes it: a mapping, ``KEY=VALUE`` lines, or a .env file."""
    if value is None or isinstance(value, dict):
        return None if value is None else {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        file = base / os.path.expanduser(value)
        if not file.is_file():
            raise BentoMLConfigException(f"invalid bentofile.yaml: {path}: no .env file {value!r}")
        value = [line for line in file.read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            match = _ENV_LINE.fullmatch(str(item).strip())
            if not match:
                raise BentoMLConfigException(
                    f"invalid bentofile.yaml: {path}[{i}]: expected KEY=VALUE, got {item!r}")
            out[match[1]] = match[2].strip().strip("'\"")
        return out
    raise BentoMLConfigException(
        f"invalid bentofile.yaml: {path}: expected a mapping, a KEY=VALUE list or a .env file")


def _normalise(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """The loose shapes BentoML accepts, made strict before structuring."""
    raw = dict(raw)
    python = raw.get("python")
    if isinstance(python, dict):
        python = raw["python"] = dict(python)
        for key in ("trusted_host", "find_links", "extra_index_url"):
            if isinstance(python.get(key), str):
                python[key] = [python[key]]
    docker = raw.get("docker")
    if isinstance(docker, dict):
        docker = raw["docker"] = dict(docker)
        if "env" in docker:
            docker["env"] = _env_mapping(docker["env"], "docker.env", base)
        for key in ("python_version", "cuda_version"):
            if isinstance(docker.get(key), (int, float)):
                docker[key] = str(docker[key])  # an unquoted 3.10 reads as 3.1: quote it
        version = docker.get("python_version")
        if version is not None and not _PYTHON_VERSION.fullmatch(str(version)):
            raise BentoMLConfigException(
                f"invalid bentofile.yaml: docker.python_version: {version!r} is not a Python 3 "
                "version such as '3.11' or '3.11.9'")
    if isinstance(raw.get("models"), list):
        raw["models"] = [{"tag": m} if isinstance(m, str) else m for m in raw["models"]]
    for key in ("python", "docker", "conda"):
        if raw.get(key) is None:
            raw.pop(key, None)
    return raw


def _refuse_unsupported(config: BentoBuildConfig) -> None:
    if not config.conda.is_empty():
        raise InvalidArgument(
            "bentofile.yaml: conda: conda environments are not supported by bentolite; list "
            "the packages under python.packages (or python.requirements_txt) instead")
    docker = config.docker
    if docker.cuda_version is not None:
        raise InvalidArgument(
            "bentofile.yaml: docker.cuda_version is not supported; set docker.base_image to a "
            "CUDA image that has python3 and pip (e.g. an nvidia/cuda runtime image)")
    if docker.dockerfile_template is not None:
        raise InvalidArgument(
            "bentofile.yaml: docker.dockerfile_template (BentoML's Jinja blocks) is not "
            "supported; use docker.setup_script, or edit the Dockerfile that "
            "`bentolite containerize --output DIR` writes")
    if docker.distro not in (None, "debian"):
        raise InvalidArgument(
            f"bentofile.yaml: docker.distro {docker.distro!r} is not supported; bentolite "
            "images are Debian (python:<version>-slim); use docker.base_image for another")
    for i, spec in enumerate(config.models):
        for key in ("alias", "filter"):
            if getattr(spec, key) is not None:
                raise InvalidArgument(f"bentofile.yaml: models[{i}].{key} is not supported")


def parse_bentofile(raw: Any, base: str | os.PathLike[str] = ".") -> BentoBuildConfig:
    """Structure a bentofile mapping; ``base`` resolves a ``docker.env`` file path."""
    if not isinstance(raw, dict):
        raise BentoMLConfigException("invalid bentofile.yaml: expected a mapping at the top level")
    if not raw.get("service"):
        raise BentoMLConfigException(
            "invalid bentofile.yaml: service: required, e.g. 'service: \"service:svc\"'")
    config = _structure(_normalise(raw, Path(base)), BentoBuildConfig, what="bentofile.yaml")
    _refuse_unsupported(config)
    return config


def load_bentofile(path: str | os.PathLike[str]) -> BentoBuildConfig:
    """Read and check a ``bentofile.yaml``."""
    file = Path(path)
    if not file.is_file():
        raise InvalidArgument(f"bentofile {str(file)!r} not found")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise BentoMLConfigException(f"{file} is not valid YAML: {e}") from None
    return parse_bentofile(raw, file.parent)

"""A bento's ``env/``: its install script, Dockerfile and entrypoint; and ``containerize``.

The image installs the bento's requirements and bentolite, copies the bento to
``/home/bentoml/bento`` and runs ``bentolite serve`` on it as the non-root user ``bentoml``
on port 3000 (``BENTOLITE_CONFIG``, ``BENTOML_PORT`` and ``PORT`` are honoured). The same
install script is what ``tests/bentos/test_portability.py`` runs in a fresh venv.
"""
from __future__ import annotations

import json
import logging
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs

from ..exceptions import BentoMLException, InvalidArgument
from ..tag import TagLike
from .bento import Bento, default_bento_store
from .build_config import DockerOptions, EnvVar, PythonOptions

__all__ = ["BACKENDS", "ContainerizeResult", "available_backends", "containerize", "write_env"]

logger = logging.getLogger(__name__)

BACKENDS = ("docker", "podman", "buildah")
BENTO_PATH = "/home/bentoml/bento"

_INSTALL_SH = """\
#!/usr/bin/env bash
# Install the bento's Python requirements, then bentolite (written by bentolite).
set -euo pipefail
BASEDIR="$(cd -- "$(dirname -- "${{BASH_SOURCE[0]}}")" && pwd)"
PIP_ARGS=({pip_args})
if [ -f "$BASEDIR/requirements.lock.txt" ]; then
    python3 -m pip install -r "$BASEDIR/requirements.lock.txt" "${{PIP_ARGS[@]}}"
elif [ -f "$BASEDIR/requirements.txt" ]; then
    python3 -m pip install -r "$BASEDIR/requirements.txt" "${{PIP_ARGS[@]}}"
fi
if compgen -G "$BASEDIR/wheels/*.whl" > /dev/null; then
    python3 -m pip install "$BASEDIR"/wheels/*.whl "${{PIP_ARGS[@]}}"
fi
if ! python3 -c "import bentolite" 2> /dev/null; then
    python3 -m pip install "bentolite==${{BENTOLITE_VERSION:-{version}}}" "${{PIP_ARGS[@]}}"
fi
"""

_ENTRYPOINT_SH = """\
#!/usr/bin/env bash
# `docker run IMAGE [serve options]` serves the bento in $BENTO_PATH (written by bentolite).
set -Eeuo pipefail
if [[ -v PORT ]]; then
    export BENTOML_PORT="$PORT"
fi
if [ "$#" -eq 0 ] || [ "${1:0:1}" = "-" ]; then
    exec bentolite serve "$BENTO_PATH" "$@"
elif [ "$1" = "serve" ]; then
    shift
    exec bentolite serve "$BENTO_PATH" "$@"
fi
exec "$@"
"""


def _dockerfile(tag: str, docker: DockerOptions, envs: list[EnvVar]) -> str:
    from .. import __version__

    base = docker.base_image or f"python:{docker.python_version}-slim"
    lines = [
        f"# The image of bento {tag}, written by bentolite {__version__}.",
        "# Build context: the bento directory (`bentolite containerize` writes it).",
        f"FROM {base}",
        "ENV LANG=C.UTF-8 LC_ALL=C.UTF-8 PYTHONIOENCODING=UTF-8 PYTHONUNBUFFERED=1",
        "USER root",
    ]
    if docker.system_packages and not docker.base_image:
        packages = " ".join(shlex.quote(p) for p in docker.system_packages)
        lines.append(
            "RUN apt-get update -y && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            f"--no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*")
    lines += [
        "ARG BENTO_USER=bentoml",
        "ARG BENTO_USER_UID=1034",
        "ARG BENTO_USER_GID=1034",
        "RUN groupadd -g $BENTO_USER_GID -o $BENTO_USER && "
        "useradd -m -u $BENTO_USER_UID -g $BENTO_USER_GID -o -r $BENTO_USER",
        f"ARG BENTO_PATH={BENTO_PATH}",
        "ENV BENTO_PATH=$BENTO_PATH BENTOLITE_HOME=/home/bentoml/",
    ]
    env = dict(docker.env or {})
    env.update({e.name: e.value for e in envs if e.value is not None})
    lines += [f"ENV {name}={json.dumps(value)}" for name, value in env.items()]
    lines += [
        "RUN mkdir -p $BENTO_PATH && chown bentoml:bentoml $BENTO_PATH -R",
        "WORKDIR $BENTO_PATH",
        "COPY --chown=bentoml:bentoml ./env/python ./env/python/",
        "RUN bash -euxo pipefail ./env/python/install.sh",
    ]
    if docker.setup_script:
        lines += ["COPY ./env/docker/setup_script ./env/docker/setup_script",
                  "RUN chmod +x ./env/docker/setup_script && ./env/docker/setup_script"]
    lines += [
        "COPY --chown=bentoml:bentoml . ./",
        "RUN chmod +x ./env/docker/entrypoint.sh",
        "EXPOSE 3000",
        "USER bentoml",
        f'ENTRYPOINT ["{BENTO_PATH}/env/docker/entrypoint.sh"]',
    ]
    return "\n".join(lines) + "\n"


def _options(cls: type, data: Any) -> Any:
    """A record from a bento.yaml section, keeping only the keys it knows (BentoML adds some)."""
    known = {f.name for f in attrs.fields(cls)}
    return cls(**{k: v for k, v in (data or {}).items() if k in known})


def write_env(bento_dir: Path, info: dict[str, Any]) -> None:
    """(Re)write ``env/python/install.sh`` and ``env/docker/{Dockerfile,entrypoint.sh}``."""
    from .. import __version__

    python = _options(PythonOptions, info.get("python"))
    docker = _options(DockerOptions, info.get("docker"))
    if not docker.base_image and not docker.python_version:
        docker = attrs.evolve(docker, python_version="3.11")
    envs = [_options(EnvVar, e) for e in info.get("envs") or [] if isinstance(e, dict)]
    pip_args = " ".join(shlex.quote(a) for a in ["--no-warn-script-location", *python.pip_options()])
    py_dir, docker_dir = bento_dir / "env" / "python", bento_dir / "env" / "docker"
    py_dir.mkdir(parents=True, exist_ok=True)
    docker_dir.mkdir(parents=True, exist_ok=True)
    for path, text in ((py_dir / "install.sh", _INSTALL_SH.format(pip_args=pip_args, version=__version__)),
                       (docker_dir / "entrypoint.sh", _ENTRYPOINT_SH),
                       (docker_dir / "Dockerfile", _dockerfile(f"{info['name']}:{info['version']}", docker, envs))):
        path.write_text(text)
        if path.suffix == ".sh":
            path.chmod(0o755)


@attrs.frozen
class ContainerizeResult:
    context: str
    image_tag: str
    command: list[str]
    built: bool


def available_backends(wanted: tuple[str, ...] = BACKENDS) -> list[str]:
    """The backends that can build now: on PATH and answering (a docker CLI without a
    running daemon does not count)."""
    found = []
    for backend in wanted:
        if shutil.which(backend) is None:
            continue
        probe = [backend, "version"] if backend == "buildah" else [backend, "info"]
        try:
            done = subprocess.run(probe, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            found.append(backend)
    return found


def _build_command(backend: str, image_tag: str, context: Path) -> list[str]:
    verb = ["bud"] if backend == "buildah" else ["build"]
    return [backend, *verb, "-t", image_tag, "-f", str(context / "env" / "docker" / "Dockerfile"),
            str(context)]


def containerize(tag: TagLike, *, image_tag: str | None = None, backend: str | None = None,
                 output: str | None = None) -> ContainerizeResult:
    """Write bento ``tag``'s build context and build its image.

    With ``output`` the context goes there and nothing is built (the command is returned);
    otherwise the first of ``backend`` / docker, podman, buildah found on PATH builds it.
    """
    if backend is not None and backend not in BACKENDS:
        raise InvalidArgument(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    bento: Bento = default_bento_store().get(tag)
    image_tag = image_tag or str(bento.tag)
    found = [] if output is not None else available_backends((backend,) if backend else BACKENDS)
    if output is None and not found:
        wanted = backend or " / ".join(BACKENDS)
        raise BentoMLException(
            f"no container backend to build with ({wanted}: not on PATH, or its daemon does "
            f"not answer); run `bentolite containerize {bento.tag} --output DIR` to write the "
            "build context and build it where one runs")
    import tempfile

    context = Path(output) if output else Path(tempfile.mkdtemp(prefix="bentolite-image-"))
    if context.exists() and any(context.iterdir()):
        raise InvalidArgument(f"--output {str(context)!r} is not empty")
    write_context(bento, context)
    command = _build_command(found[0] if found else (backend or "docker"), image_tag, context)
    if output is not None:
        return ContainerizeResult(str(context), image_tag, command, built=False)
    try:
        logger.info("building image %s: %s", image_tag, shlex.join(command))
        done = subprocess.run(command)
        if done.returncode != 0:
            raise BentoMLException(f"{shlex.join(command)} failed with exit status {done.returncode}")
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return ContainerizeResult(str(context), image_tag, command, built=True)


def write_context(bento: Bento, context: Path) -> None:
    """The image's build context: the bento, its env files rewritten, a bentolite wheel."""
    from .wheel import write_bentolite_wheel

    shutil.copytree(bento.path, context, dirs_exist_ok=True)
    write_env(context, bento.to_dict())
    write_bentolite_wheel(context / "env" / "python" / "wheels")

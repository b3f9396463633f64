"""``bentolite.ray.deployment``: a service as a Ray Serve application (BentoML 1.1's call).

The API server becomes the ingress deployment ``bento-svc-<service>`` and each runner its
own deployment ``bento-runner-<runner>`` with its own replicas and resources; runner calls
go through Ray deployment handles. A new-style service is the v1 Service the engine builds
(``services/engine.py``): each dependency service is a runner deployment, and the root runs
in the ingress (in a deployment of its own when it batches, as under ``bentolite serve``).
Needs ``pip install "bentolite[ray]"`` (Ray Serve 2.60); only public ``ray.serve`` APIs
are used.

    app = bentolite.ray.deployment("service:svc", {"num_replicas": 2},
                                   {"classifier": {"num_replicas": 4}}, enable_batching=True)
    ray.serve.run(app)
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import attrs

from ..runner.batching import BatchLimits
from .replicas import ApiIngress, RunnerReplica, ServiceTarget

if TYPE_CHECKING:  # pragma: no cover
    from ray.serve import Application

    from ..bentos.bento import Bento
    from ..runner.runner import Runner
    from ..services.service import Service

__all__ = ["deployment", "resolve_target", "runner_actor_options", "config_name",
           "ServiceTarget"]

#: Ray's default of 5 requests per replica caps HTTP concurrency and starves the batcher;
#: bentolite's own limits (api_server.traffic.max_concurrency, the batch queue) apply instead
DEFAULT_MAX_ONGOING_REQUESTS = 1000

#: option names BentoML 1.x users may still pass, and what Ray 2.60 calls them
_RENAMED = {
    "max_concurrent_queries": "max_ongoing_requests",
    "route_prefix": "serve.run(app, route_prefix=...)",
}
#: batching_config keys: Ray's @serve.batch names (BentoML 1.1) and the batcher's own
_BATCHING_KEYS = ("max_batch_size", "batch_wait_timeout_s", "max_latency_ms", "max_wait_ms",
                  "max_queue_size")


def resolve_target(target: Any) -> tuple[ServiceTarget, Service]:
    """The one place a deployment target is understood: how replicas import it, and its service.

    ``target``: a ``Service``, a new-style ``@bentolite.service`` class, a bento tag
    (``name[:version]``, from the store) or bento directory, or anything ``bentolite.load``
    takes (``"module:svc"``, ``"file.py:svc"``).
    """
    from ..bentos.target import find_bento
    from ..config import get_config
    from ..services.definition import ServiceDefinition
    from ..services.loader import load
    from ..services.service import Service

    if isinstance(target, str):
        bento = find_bento(target, os.getcwd())
        if bento is not None:
            return _bento_target(bento)
        service = load(target)
    elif isinstance(target, Service):
        service = target
    elif isinstance(target, ServiceDefinition):
        service = target.as_service()
    else:
        raise TypeError("bentolite.ray.deployment needs a Service, a @bentolite.service class, "
                        f"'module:svc' or a bento tag, got {target!r}")
    if service.import_string is None:
        service.import_string, service.working_dir = _import_string_of(target)
    return (ServiceTarget(service.import_string, service.working_dir or os.getcwd(), get_config()),
            service)


def _bento_target(bento: Bento) -> tuple[ServiceTarget, Service]:
    """Replicas import the bento's service from its ``src/`` and load its own ``models/``
    (as ``bentolite serve TAG`` does); the driver loads it so, leaving its environment as it was."""
    from ..config import get_config
    from ..models.store import MODEL_STORE_ENV

    store = bento.model_store
    service_target = ServiceTarget(bento.service, bento.src_dir, get_config(),
                                   str(store.root) if store is not None else None)
    saved = os.environ.get(MODEL_STORE_ENV)
    try:
        service = service_target.load()
    finally:
        if saved is None:
            os.environ.pop(MODEL_STORE_ENV, None)
        else:
            os.environ[MODEL_STORE_ENV] = saved
    return service_target, service


def _import_string_of(obj: Any) -> tuple[str, str]:
    """``module:attr`` of a Service (or service class) built by an import, and the folder it
    was imported from.

    A module that defines or imports it is preferred to ``__main__`` (a script that imported
    it), since importing a script again in each replica would run it.
    """
    found = [(name != "__main__", name, attr, os.path.abspath(module.__file__))
             for name, module in list(sys.modules.items()) if getattr(module, "__file__", None)
             for attr, value in list(vars(module).items()) if value is obj]
    if not found:
        raise ValueError(
            f"Service {obj.name!r} is not a module attribute, so Ray replicas cannot import "
            "it; define it at the top level of a module and pass it (or 'module:attr')")
    _, name, attr, path = max(found)
    if name == "__main__":  # defined in the script itself (whose serve.run needs a main guard)
        return f"{os.path.basename(path)}:{attr}", os.path.dirname(path)
    root = os.path.dirname(path)
    for _ in range(name.count(".") + (os.path.basename(path) == "__init__.py")):
        root = os.path.dirname(root)
    return f"{name}:{attr}", root


def runner_actor_options(runner: Runner) -> dict[str, Any]:
    """Ray actor resources from the runner's ``resources`` config, or a new-style service's
    ``resources``: cpu (``0.5``, ``"500m"``), nvidia.com/gpu (or gpu)."""
    from ..runner.strategy import CpuResource

    definition = getattr(runner, "definition", None)
    resources = definition.resources if definition is not None else runner.resource_config
    if not isinstance(resources, dict):
        return {}
    options: dict[str, Any] = {}
    if resources.get("cpu") is not None:
        options["num_cpus"] = CpuResource.from_spec(resources["cpu"])
    gpus = resources.get("nvidia.com/gpu", resources.get("gpu"))
    if gpus is not None:
        options["num_gpus"] = float(len(gpus)) if isinstance(gpus, (list, tuple)) else float(gpus)
    return options


def _check_options(options: dict[str, Any] | None, where: str) -> dict[str, Any]:
    options = dict(options or {})
    for old, new in _RENAMED.items():
        if old in options:
            raise ValueError(f"{where}: {old!r} is not a Ray Serve 2.60 deployment option; "
                             f"use {new}")
    return options


def _config_name(runner: Runner) -> str:
    """The key of ``runner`` in the config maps: its name, or its new-style service's name."""
    definition = getattr(runner, "definition", None)
    return definition.name if definition is not None else runner.name


def _with_defaults(runner: Runner, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with what the deployment running ``runner`` takes from its config where
    not given: its resources as ``ray_actor_options``, a service's ``workers`` as replicas."""
    options["ray_actor_options"] = {**runner_actor_options(runner),
                                    **(options.get("ray_actor_options") or {})}
    definition = getattr(runner, "definition", None)
    if definition is not None and "autoscaling_config" not in options:
        options.setdefault("num_replicas", definition.workers)
    return options


def _runner_options(runner: Runner, config: dict[str, Any] | None) -> dict[str, Any]:
    options = _with_defaults(runner, _check_options(
        config, f"runners_deployment_config_map[{_config_name(runner)!r}]"))
    queue = max(m.limits.max_queue_size for m in runner.runner_methods)
    options.setdefault("max_ongoing_requests", queue)  # the batcher's queue bounds a replica
    return options


def _limits(runner: Runner, enable_batching: bool,
            config: dict[str, dict[str, Any]] | None) -> dict[str, BatchLimits]:
    """Each method's batching on Ray: off unless ``enable_batching`` (as in BentoML 1.1)."""
    config = dict(config or {})
    methods = {m.name: m for m in runner.runner_methods}
    unknown = sorted(set(config) - set(methods))
    if unknown:
        raise ValueError(f"batching_config[{_config_name(runner)!r}] names {unknown}, which it "
                         f"does not have (its methods: {sorted(methods)})")
    limits = {}
    for name, method in methods.items():
        settings = dict(config.get(name) or {})
        bad = sorted(set(settings) - set(_BATCHING_KEYS))
        if bad:
            raise ValueError(f"batching_config[{_config_name(runner)!r}][{name!r}] has unknown "
                             f"keys {bad}; known: {list(_BATCHING_KEYS)}")
        if "batch_wait_timeout_s" in settings:
            settings["max_wait_ms"] = float(settings.pop("batch_wait_timeout_s")) * 1000
        limits[name] = attrs.evolve(method.limits, **settings,
                                    batchable=method.limits.batchable and enable_batching)
    return limits


def deployment(
    target: Any,
    service_deployment_config: dict[str, Any] | None = None,
    runners_deployment_config_map: dict[str, dict[str, Any]] | None = None,
    enable_batching: bool = False,
    batching_config: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> Application:
    """A Ray Serve application serving ``target``, for ``ray.serve.run(app)``.

    Args:
        target: a ``Service``, a ``@bentolite.service`` class, ``"module:svc"`` or a bento
            tag (as ``bentolite serve`` takes).
        service_deployment_config: Ray deployment options of the API server (``num_replicas``,
            ``autoscaling_config``, ``ray_actor_options``, ...). A new-style root running in
            it gives the defaults: ``workers`` -> ``num_replicas``, ``resources`` as below.
        runners_deployment_config_map: runner (or dependency service) name -> its deployment
            options; resources default to the runner's ``resources`` config (cpu ->
            ``num_cpus``, ``nvidia.com/gpu`` / gpu -> ``num_gpus``), and a service's
            ``workers`` gives ``num_replicas``.
        enable_batching: batch the batchable runner methods (off by default, as in BentoML
            1.1) with bentolite's adaptive batcher inside each runner replica.
        batching_config: runner (or service) name -> method name -> ``max_batch_size``,
            ``batch_wait_timeout_s`` (Ray's names), ``max_latency_ms``, ``max_wait_ms``,
            ``max_queue_size``.
    """
    from ray import serve

    service_target, service = resolve_target(target)
    runner_configs = dict(runners_deployment_config_map or {})
    batching = dict(batching_config or {})
    deployed = {_config_name(runner): runner for runner in service.runners if not runner.embedded}
    for arg, mapping in (("runners_deployment_config_map", runner_configs),
                         ("batching_config", batching)):
        unknown = sorted(set(mapping) - set(deployed))
        if unknown:
            raise ValueError(
                f"{arg} names runners {unknown}; service {service.name!r} deploys "
                f"{sorted(deployed)} (what runs in the API server takes "
                "service_deployment_config)")
    runners: dict[str, Any] = {}  # runner name -> its bound deployment, dependencies first
    for key, runner in deployed.items():
        runners[runner.name] = serve.deployment(RunnerReplica).options(
            name=f"bento-runner-{runner.name}",
            **_runner_options(runner, runner_configs.get(key)),
        ).bind(service_target, runner.name,
               _limits(runner, enable_batching, batching.get(key)),
               {dep.name: runners[dep.name] for dep in getattr(runner, "dependencies", ())})
    options = _check_options(service_deployment_config, "service_deployment_config")
    for runner in service.runners:
        if runner.embedded and getattr(runner, "definition", None) is not None:
            options = _with_defaults(runner, options)  # the new-style root runs in the ingress
    options.setdefault("max_ongoing_requests", DEFAULT_MAX_ONGOING_REQUESTS)
    return serve.deployment(ApiIngress).options(
        name=f"bento-svc-{service.name}", **options).bind(service_target, runners)

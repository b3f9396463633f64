"""Resource scheduling: how many workers a runner gets, and each worker's environment."""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from ..exceptions import BentoMLConfigException

__all__ = [
    "Resource",
    "CpuResource",
    "NvidiaGpuResource",
    "Strategy",
    "DefaultStrategy",
    "THREAD_ENV_VARS",
    "system_resources",
    "resolve_resources",
    "runner_resources_beside",
    "cgroup_cpu_count",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Env vars that set the thread count of numeric libraries in a CPU worker.
THREAD_ENV_VARS = (
    "BENTOML_NUM_THREAD",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_RS_NUM_CPUS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TORCH_NUM_THREADS",
)


class Resource(Generic[T]):
    """A kind of resource a runner can ask for; subclass with ``resource_id="..."``."""

    resource_id: ClassVar[str]
    registry: ClassVar[dict[str, type[Resource[Any]]]] = {}

    def __init_subclass__(cls, resource_id: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if resource_id is not None:
            cls.resource_id = resource_id
            Resource.registry[resource_id] = cls

    @classmethod
    def from_spec(cls, spec: Any) -> T:
        raise NotImplementedError

    @classmethod
    def from_system(cls) -> T:
        raise NotImplementedError

    @classmethod
    def validate(cls, value: T) -> None:
        pass


def cgroup_cpu_count(root: str | os.PathLike[str] = "/sys/fs/cgroup") -> float:
    """CPUs this process may use: the cgroup quota (v2 ``cpu.max``, v1 cfs) or ``cpu_count``."""
    count = float(os.cpu_count() or 1)
    base = Path(root)
    quota: float | None = None
    try:
        text = (base / "cpu.max").read_text().split()
        if text and text[0] != "max":
            quota = int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        try:
            q = int((base / "cpu" / "cpu.cfs_quota_us").read_text())
            p = int((base / "cpu" / "cpu.cfs_period_us").read_text())
            if q > 0 and p > 0:
                quota = q / p
        except (OSError, ValueError):
            pass
    if quota is None:
        return count
    return min(max(quota, 1.0) if quota > 0 else 1.0, count)


class CpuResource(Resource[float], resource_id="cpu"):
    @classmethod
    def from_spec(cls, spec: Any) -> float:
        if isinstance(spec, bool):
            raise BentoMLConfigException(f"runners.resources.cpu: invalid value {spec!r}")
        if isinstance(spec, (int, float)):
            return float(spec)
        if isinstance(spec, str):
            try:
                return float(spec[:-1]) / 1000 if spec.endswith("m") else float(spec)
            except ValueError:
                pass
        raise BentoMLConfigException(
            f"runners.resources.cpu: {spec!r} is not a CPU amount (e.g. 2, 0.5 or '500m')")

    @classmethod
    def from_system(cls) -> float:
        return cgroup_cpu_count()

    @classmethod
    def validate(cls, value: float) -> None:
        if value < 0:
            raise BentoMLConfigException(f"runners.resources.cpu: {value} is negative")
        system = cls.from_system()
        if value > system:  # trusted, like GPU lists: the config may describe another machine
            logger.warning("runners.resources.cpu is %g but only %g CPUs are available here",
                           value, system)


class NvidiaGpuResource(Resource[list[int]], resource_id="nvidia.com/gpu"):
    @classmethod
    def from_spec(cls, spec: Any) -> list[int]:
        if isinstance(spec, bool):
            raise BentoMLConfigException(f"runners.resources.nvidia.com/gpu: invalid {spec!r}")
        if isinstance(spec, int):
            return list(range(spec))
        if isinstance(spec, str):
            return [int(x) for x in spec.split(",") if x.strip()]
        if isinstance(spec, (list, tuple)):
            return [int(x) for x in spec]
        raise BentoMLConfigException(
            f"runners.resources.nvidia.com/gpu: {spec!r} is not a GPU count or index list")

    @classmethod
    def from_system(cls) -> list[int]:
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            try:
                return list(range(pynvml.nvmlDeviceGetCount()))
            finally:
                pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - no NVML: count the driver's device entries
            gpus = Path("/proc/driver/nvidia/gpus")
            return list(range(len(list(gpus.iterdir())))) if gpus.is_dir() else []

    @classmethod
    def validate(cls, value: list[int]) -> None:
        if any(i < 0 for i in value):
            raise BentoMLConfigException(
                f"runners.resources.nvidia.com/gpu: negative index in {value}")
        present = len(cls.from_system())
        missing = [i for i in value if i >= present]
        if missing:  # trusted anyway: the config may describe the machine it will run on
            logger.warning("GPU indices %s are configured but only %d GPU(s) are visible here",
                           missing, present)


def system_resources() -> dict[str, Any]:
    return {rid: cls.from_system() for rid, cls in Resource.registry.items()}


def resolve_resources(spec: Any) -> dict[str, Any]:
    """Config ``runners.resources`` (None, "system" or a mapping) -> ``{resource_id: value}``."""
    if spec is None or spec == "system":
        return system_resources()
    if not isinstance(spec, dict):
        raise BentoMLConfigException(f"runners.resources: expected a mapping, got {spec!r}")
    out: dict[str, Any] = {}
    for rid, raw in spec.items():
        cls = Resource.registry.get(rid)
        if cls is None:
            raise BentoMLConfigException(
                f"runners.resources.{rid}: unknown resource (known: {sorted(Resource.registry)})")
        value = cls.from_spec(raw)
        cls.validate(value)
        out[rid] = value
    # bentolite: a mapping without "cpu" still gets the CPUs of the machine
    out.setdefault("cpu", CpuResource.from_system())
    return out


def runner_resources_beside(resource_request: Any, reserved_cpus: float,
                            runnable_class: type) -> Any:
    """The resources a runner gets on a host whose API workers use ``reserved_cpus`` cores.

    Only a multi-threaded runnable with an unset (or ``"system"``) request changes: its CPU
    count drops by the reserved cores (at least 1 stays), so its thread pool fits the cores
    the API workers leave free. Idle BLAS threads spin, so oversubscribed ones burn the API
    workers' cores; single-threaded workers just share them, and keep one worker per CPU.
    An explicit ``resources`` config is used as written.
    """
    if (reserved_cpus <= 0 or not (resource_request is None or resource_request == "system")
            or not getattr(runnable_class, "SUPPORTS_CPU_MULTI_THREADING", False)):
        return resource_request
    resources = system_resources()
    resources["cpu"] = max(1.0, resources["cpu"] - reserved_cpus)
    return resources


class Strategy:
    """How a runner's workers are scheduled onto resources."""

    @classmethod
    def get_worker_count(cls, runnable_class: type, resource_request: dict[str, Any] | None,
                         workers_per_resource: float) -> int:
        raise NotImplementedError

    @classmethod
    def get_worker_env(cls, runnable_class: type, resource_request: dict[str, Any] | None,
                       workers_per_resource: float, worker_index: int) -> dict[str, str]:
        raise NotImplementedError


def _gpus_for(runnable_class: type, resources: dict[str, Any]) -> list[int]:
    gpus = resources.get("nvidia.com/gpu") or []
    if gpus and "nvidia.com/gpu" in getattr(runnable_class, "SUPPORTED_RESOURCES", ()):
        return list(gpus)
    return []


class DefaultStrategy(Strategy):
    """BentoML 1.1's rules: one worker per GPU, else by CPU (threads or processes)."""

    @classmethod
    def get_worker_count(cls, runnable_class: type, resource_request: dict[str, Any] | None,
                         workers_per_resource: float) -> int:
        resources = resolve_resources(resource_request)
        gpus = _gpus_for(runnable_class, resources)
        if gpus:
            return math.ceil(len(gpus) * workers_per_resource)
        cpus = resources.get("cpu") or 0
        if cpus > 0:
            if "cpu" not in getattr(runnable_class, "SUPPORTED_RESOURCES", ("cpu",)):
                logger.warning("%s does not list 'cpu' in SUPPORTED_RESOURCES; running on CPU",
                               runnable_class.__name__)
            if getattr(runnable_class, "SUPPORTS_CPU_MULTI_THREADING", False):
                if not float(workers_per_resource).is_integer():
                    raise ValueError(
                        "workers_per_resource must be a whole number for a multi-threaded CPU "
                        f"runnable, got {workers_per_resource}")
                return int(workers_per_resource)
            return int(math.ceil(cpus) * workers_per_resource)
        raise ValueError(
            f"no resources to schedule {runnable_class.__name__} on: runners.resources gives "
            "neither CPUs nor GPUs it supports")

    @classmethod
    def get_worker_env(cls, runnable_class: type, resource_request: dict[str, Any] | None,
                       workers_per_resource: float, worker_index: int) -> dict[str, str]:
        resources = resolve_resources(resource_request)
        gpus = _gpus_for(runnable_class, resources)
        if gpus:
            if float(workers_per_resource).is_integer():
                gpu = gpus[worker_index // int(workers_per_resource)]
                return {"CUDA_VISIBLE_DEVICES": str(gpu)}
            if workers_per_resource > 1:
                raise ValueError("a fractional workers_per_resource must be below 1")
            per_worker = round(1 / workers_per_resource)
            start = worker_index * per_worker
            chosen = gpus[start:start + per_worker]
            if len(chosen) < per_worker:
                raise IndexError(
                    f"worker {worker_index} needs {per_worker} GPUs; only {len(gpus)} assigned")
            return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in chosen)}
        cpus = resources.get("cpu") or 1
        if getattr(runnable_class, "SUPPORTS_CPU_MULTI_THREADING", False):
            # bentolite: the CPU share of each worker (1.1 gave every worker all CPUs)
            threads = str(max(1, math.ceil(cpus / max(float(workers_per_resource), 1.0))))
        else:
            threads = "1"
        env = {"CUDA_VISIBLE_DEVICES": "-1"}
        env.update({name: threads for name in THREAD_ENV_VARS})
        return env

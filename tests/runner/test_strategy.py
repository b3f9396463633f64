"""DefaultStrategy worker counts and env; CPU counting through cgroup files."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

import bentolite
from bentolite.runner.strategy import THREAD_ENV_VARS, DefaultStrategy, cgroup_cpu_count


class CpuThreads(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    @bentolite.Runnable.method
    def __call__(self, x: int) -> int:
        return x


class CpuSingle(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method
    def __call__(self, x: int) -> int:
        return x


class Gpu(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("nvidia.com/gpu", "cpu")
    SUPPORTS_CPU_MULTI_THREADING = True

    @bentolite.Runnable.method
    def __call__(self, x: int) -> int:
        return x


def test_multithreaded_cpu_runnable_gets_workers_per_resource_workers() -> None:
    assert DefaultStrategy.get_worker_count(CpuThreads, {"cpu": 4}, 1) == 1
    assert DefaultStrategy.get_worker_count(CpuThreads, {"cpu": 4}, 2) == 2
    env = DefaultStrategy.get_worker_env(CpuThreads, {"cpu": 4}, 2, 1)
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert {env[k] for k in THREAD_ENV_VARS} == {"2"}
    assert "OMP_NUM_THREADS" in env and "TORCH_NUM_THREADS" in env
    with pytest.raises(ValueError, match="whole number"):
        DefaultStrategy.get_worker_count(CpuThreads, {"cpu": 4}, 1.5)


def test_single_threaded_cpu_runnable_gets_one_worker_per_cpu() -> None:
    assert DefaultStrategy.get_worker_count(CpuSingle, {"cpu": 1.5}, 1) == 2
    assert DefaultStrategy.get_worker_count(CpuSingle, {"cpu": "1000m"}, 2) == 2
    env = DefaultStrategy.get_worker_env(CpuSingle, {"cpu": 1}, 1, 0)
    assert env["OMP_NUM_THREADS"] == "1" and env["CUDA_VISIBLE_DEVICES"] == "-1"


def test_configured_gpus_are_trusted_without_a_gpu_present() -> None:
    resources = {"nvidia.com/gpu": [0, 1]}
    assert DefaultStrategy.get_worker_count(Gpu, resources, 1) == 2
    assert DefaultStrategy.get_worker_count(Gpu, resources, 2) == 4
    envs = [DefaultStrategy.get_worker_env(Gpu, resources, 2, i) for i in range(4)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "0", "1", "1"]
    half = DefaultStrategy.get_worker_env(Gpu, {"nvidia.com/gpu": [2, 3]}, 0.5, 0)
    assert half == {"CUDA_VISIBLE_DEVICES": "2,3"}
    # a CPU-only runnable ignores the GPUs
    assert DefaultStrategy.get_worker_count(CpuThreads, resources, 1) == 1


def test_runner_uses_config_resources(tmp_path: Path) -> None:
    from bentolite.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text("runners:\n  gpurunner:\n    resources:\n      nvidia.com/gpu: [0, 1]\n"
                      "    workers_per_resource: 1\n")
    try:
        load_config(config, "")
        runner = bentolite.Runner(Gpu, name="gpurunner")
        assert runner.scheduled_worker_count == 2
        assert runner.scheduled_worker_env_map[1] == {"CUDA_VISIBLE_DEVICES": "1"}
    finally:
        load_config(None, "")


def test_cgroup_quota_limits_cpu_count(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_count(tmp_path) == pytest.approx(min(1.5, cgroup_cpu_count("/nowhere")))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_count(tmp_path) == cgroup_cpu_count("/nowhere")
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_count(v1) == 1.0


def test_threaded_runners_get_the_cpus_the_api_workers_leave() -> None:
    from bentolite.runner.strategy import runner_resources_beside

    cpus = cgroup_cpu_count()
    beside = runner_resources_beside(None, 1, CpuThreads)
    assert beside["cpu"] == max(1.0, cpus - 1) and "nvidia.com/gpu" in beside
    assert runner_resources_beside("system", cpus + 4, CpuThreads)["cpu"] == 1.0  # at least one
    assert runner_resources_beside(None, 0, CpuThreads) is None  # nothing reserved: the default
    explicit = {"cpu": 8}
    assert runner_resources_beside(explicit, 1, CpuThreads) is explicit  # used as written
    assert runner_resources_beside(None, 1, CpuSingle) is None  # processes share, not spin

    threads = bentolite.Runner(CpuThreads, name="threads")
    env = threads.scheduled_workers(reserved_cpus=cpus)[0]
    assert {env[k] for k in THREAD_ENV_VARS} == {"1"}
    assert threads.scheduled_workers() == threads.scheduled_worker_env_map
    # a single-threaded runnable keeps one worker per CPU beside the API workers
    single = bentolite.Runner(CpuSingle, name="single")
    assert len(single.scheduled_workers(reserved_cpus=1)) == math.ceil(cpus)
    assert single.scheduled_worker_count == math.ceil(cpus)

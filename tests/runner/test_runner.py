"""Runner construction, settings precedence, default method, init_local and state errors."""
from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bentolite
from bentolite.config import load_config
from bentolite.exceptions import StateException


class Model(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, scale: int = 1) -> None:
        self.scale = scale
        self.threads: set[str] = set()

    @bentolite.Runnable.method(batchable=True)
    def predict(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        return x * self.scale

    @bentolite.Runnable.method
    def info(self) -> str:
        self.threads.add(threading.current_thread().name)
        return threading.current_thread().name


class OnlyCall(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    @bentolite.Runnable.method
    def __call__(self, x: int) -> int:
        return x + 1

    @bentolite.Runnable.method
    def other(self, x: int) -> int:
        return x


@pytest.fixture(autouse=True)
def default_config() -> Any:
    load_config(None, "")
    yield
    load_config(None, "")


def test_name_defaults_to_class_name_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        runner = bentolite.Runner(Model)
    assert runner.name == "model"
    assert "name" in caplog.text
    with pytest.raises(ValueError, match="Runner name 'bad name!' is not valid"):
        bentolite.Runner(Model, name="bad name!")


def test_runnable_without_methods_is_refused() -> None:
    class Empty(bentolite.Runnable):
        SUPPORTED_RESOURCES = ("cpu",)
        SUPPORTS_CPU_MULTI_THREADING = True

    with pytest.raises(ValueError, match="'Empty' has no methods"):
        bentolite.Runner(Empty, name="empty")


def test_attributes_follow_v1() -> None:
    runner = bentolite.Runner(Model, name="m", runnable_init_params={"scale": 3}, models=[])
    assert runner.runnable_class is Model and runner.runnable_init_params == {"scale": 3}
    assert [m.name for m in runner.runner_methods] == ["predict", "info"]
    assert runner.models == [] and runner.embedded is False and runner.workers_per_resource == 1
    assert runner.resource_config is None and runner.scheduled_worker_count == 1
    assert set(runner.scheduled_worker_env_map) == {0}
    assert runner.predict.max_batch_size == 100 and runner.predict.max_latency_ms == 10000


def test_method_settings_precedence(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("runners:\n  batching:\n    max_batch_size: 7\n  m:\n    batching:\n"
                      "      max_latency_ms: 500\n      max_wait_ms: 3\n")
    load_config(config, "")
    runner = bentolite.Runner(Model, name="m", max_batch_size=20,
                              method_configs={"info": {"max_batch_size": 2, "max_queue_size": 9}})
    assert runner.predict.limits.max_batch_size == 20
    assert runner.info.limits.max_batch_size == 2 and runner.info.limits.max_queue_size == 9
    assert runner.predict.max_latency_ms == 500 and runner.predict.limits.max_wait_ms == 3
    other = bentolite.Runner(Model, name="other")
    assert other.predict.max_batch_size == 7 and other.predict.max_latency_ms == 10000
    with pytest.raises(ValueError, match="unknown keys"):
        bentolite.Runner(Model, name="x", method_configs={"info": {"max_batchsize": 2}})
    with pytest.raises(ValueError, match="does not have"):
        bentolite.Runner(Model, name="x", method_configs={"nope": {}})


def test_disabled_batching_does_not_touch_the_runnable_class() -> None:
    load_config(None, "runners.off.batching.enabled=false")
    off = bentolite.Runner(Model, name="off")
    on = bentolite.Runner(Model, name="on")
    assert off.predict.config.batchable is False and off.predict.limits.batchable is False
    assert on.predict.config.batchable is True
    assert Model.methods()["predict"].config.batchable is True


def test_default_method() -> None:
    single = bentolite.Runner(OnlyCall, name="c")
    single.init_local(quiet=True)
    try:
        assert single.run(1) == 2
        assert asyncio.run(single.async_run(2)) == 3
    finally:
        single.destroy()
    runner = bentolite.Runner(Model, name="two")
    with pytest.raises(AttributeError, match=r"runner.<method>.run"):
        runner.run  # noqa: B018


def test_calling_an_uninitialised_runner_says_how_to_fix() -> None:
    runner = bentolite.Runner(Model, name="lonely")
    with pytest.raises(StateException) as info:
        runner.info.run()
    message = str(info.value)
    assert "lonely" in message and "runners=[" in message and "init_local()" in message
    with pytest.raises(StateException):
        asyncio.run(runner.info.async_run())
    assert asyncio.run(runner.runner_handle_is_ready(0.1)) is False


def test_init_local_serialises_calls_in_one_thread() -> None:
    runner = bentolite.Runner(Model, name="local", runnable_init_params={"scale": 2})
    runner.init_local(quiet=True)
    try:
        with pytest.raises(StateException, match="already initialized"):
            runner.init_local()
        np.testing.assert_array_equal(runner.predict.run(np.ones(3)), np.full(3, 2.0))

        async def many() -> list[str]:
            return await asyncio.gather(*(runner.info.async_run() for _ in range(10)))

        names = asyncio.run(many())
        assert len(set(names)) == 1 and names[0].startswith("runner-local")
        assert asyncio.run(runner.runner_handle_is_ready(0.1)) is True
        with pytest.raises(ValueError, match="different batch sizes"):
            runner.predict.run(np.ones(3), y=np.ones(2))
    finally:
        runner.destroy()
    with pytest.raises(StateException):
        runner.info.run()


def test_runner_modules_stay_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bentolite; bentolite.Runner; bentolite.Strategy; bentolite.Resource; "
        "import bentolite.runner.remote, bentolite.runner.process, bentolite.runner.worker; "
        "print([m for m in ('torch', 'pandas', 'PIL', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

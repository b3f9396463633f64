"""bentoml.monitor: schema and data JSON lines, per-request records, the config switches."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Iterator

import pytest

import bentolite
from bentolite import monitoring as monitor_module
from bentolite.config import load_config
from bentolite.services.context import request_id_var


@pytest.fixture(autouse=True)
def fresh_monitors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(monitor_module, "_monitors", {})
    monkeypatch.chdir(tmp_path)  # log_path "monitoring" is relative to the working directory
    yield
    monitor_module._close_all()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_schema_once_then_one_record_per_row(tmp_path: Path) -> None:
    for i in range(2):
        with bentolite.monitor("iris") as mon:
            mon.log(5.1 + i, name="sepal_len", role="feature", data_type="numerical")
            mon.log("setosa", name="pred", role="prediction", data_type="categorical")
    with bentolite.monitor("iris") as mon:
        mon.log_batch([1.0, 2.0], name="sepal_len", role="feature", data_type="numerical")
        mon.log_batch(["a", "b"], name="pred", role="prediction", data_type="categorical")
    schema = _lines(tmp_path / "monitoring/iris/schema/schema.0.log")
    assert len(schema) == 1
    assert schema[0]["columns"] == [
        {"name": "sepal_len", "role": "feature", "type": "numerical"},
        {"name": "pred", "role": "prediction", "type": "categorical"}]
    data = _lines(tmp_path / "monitoring/iris/data/data.0.log")
    assert [(r["sepal_len"], r["pred"]) for r in data] == [
        (5.1, "setosa"), (6.1, "setosa"), (1.0, "a"), (2.0, "b")]
    assert all(r["timestamp"] and "request_id" in r for r in data)


def test_concurrent_requests_keep_their_own_records(tmp_path: Path) -> None:
    async def request(i: int) -> None:
        request_id_var.set(f"req-{i}")
        with bentolite.monitor("m") as mon:
            mon.log(i, name="x", role="feature", data_type="numerical")
            await asyncio.sleep(0.01 * (3 - i))  # interleave with the other requests
            mon.log(i * 10, name="y", role="prediction", data_type="numerical")

    async def main() -> None:
        await asyncio.gather(*(request(i) for i in range(3)))

    asyncio.run(main())
    data = _lines(tmp_path / "monitoring/m/data/data.0.log")
    assert sorted((r["x"], r["y"], r["request_id"]) for r in data) == [
        (0, 0, "req-0"), (1, 10, "req-1"), (2, 20, "req-2")]


def test_bad_logging_is_refused() -> None:
    with pytest.raises(ValueError, match="column 'x' is logged twice"):
        with bentolite.monitor("dup") as mon:
            mon.log(1, name="x", role="feature", data_type="numerical")
            mon.log(2, name="x", role="feature", data_type="numerical")
    with pytest.raises(ValueError, match="different numbers of rows"):
        with bentolite.monitor("ragged") as mon:
            mon.log_batch([1, 2], name="x", role="feature", data_type="numerical")
            mon.log_batch([1], name="y", role="prediction", data_type="numerical")
    mon = monitor_module._monitors["dup"]
    with pytest.raises(RuntimeError, match="inside 'with bentoml.monitor"):
        mon.log(1, name="z", role="feature", data_type="numerical")


def test_disabled_monitoring_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("monitoring:\n  enabled: false\n")
    load_config(str(config))
    try:
        with bentolite.monitor("off") as mon:
            mon.log(1, name="x", role="feature", data_type="numerical")
        assert isinstance(mon, monitor_module.NoOpMonitor)
        assert not (tmp_path / "monitoring").exists()
    finally:
        load_config()


def test_custom_log_path(tmp_path: Path) -> None:
    with bentolite.monitor("p", monitor_options={"log_path": str(tmp_path / "elsewhere")}) as mon:
        mon.log(1, name="x", role="target", data_type="numerical")
    assert (tmp_path / "elsewhere/p/data/data.0.log").exists()

from __future__ import annotations

from pathlib import Path

import pytest

from bentolite import config
from bentolite.config import build_config, dump_config, get_config, load_config
from bentolite.exceptions import BentoMLConfigException


@pytest.fixture(autouse=True)
def fresh_config(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(config, "_current", None)
    for name in ("BENTOLITE_CONFIG", "BENTOLITE_CONFIG_OPTIONS", "BENTOML_CONFIG",
                 "BENTOML_CONFIG_OPTIONS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    cfg = build_config({})
    assert cfg.version == 1
    assert cfg.api_server.http.port == 3000
    assert cfg.api_server.traffic.timeout == 60
    assert cfg.runners.traffic.timeout == 900
    assert cfg.runners.batching.enabled and cfg.runners.batching.max_batch_size == 100
    assert cfg.runners.batching.max_latency_ms == 10000
    assert cfg.runner("anything") == cfg.runners


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"api_server": {"http": {"bogus": 1}}}, "api_server.http.bogus: unknown key"),
        ({"runners": {"batching": {"max_batch": 1}}}, "runners.batching.max_batch: unknown key"),
        ({"runners": {"iris": {"batching": {"nope": 1}}}}, "runners.iris.batching.nope: unknown key"),
        ({"runners": {"iris": {"nope": 1}}}, "runners.iris.nope: unknown key"),
        ({"runners": {"iris": 5}}, "runners.iris: unknown key"),
        ({"tracing": {"otlp": {"x": 1}}}, "tracing.otlp.x: unknown key"),
        ({"runners": {"batching": {"max_batch_size": "many"}}}, "runners.batching.max_batch_size:"),
        ({"api_server": {"metrics": {"duration": {"buckets": [0.1, "x"]}}}},
         "api_server.metrics.duration.buckets[1]:"),
        ({"runners": {"resources": 4}}, "runners.resources: expected 'system' or a mapping"),
        ({"version": 2}, "version: 2 is not supported"),
    ],
)
def test_bad_keys_and_values_name_their_path(raw, message):
    with pytest.raises(BentoMLConfigException) as info:
        build_config(raw)
    assert message in str(info.value)


def test_per_runner_overrides_merge_over_the_global_runner_config():
    cfg = build_config({
        "runners": {
            "batching": {"max_batch_size": 50, "max_latency_ms": 500},
            "workers_per_resource": 2,
            "Iris_Clf": {"batching": {"max_batch_size": 8}, "resources": {"cpu": 2}},
            "text": {"batching": {"enabled": False}, "auth_token": "s3cret"},
        }
    })
    assert cfg.runners.batching.max_batch_size == 50
    iris = cfg.runner("iris_clf")
    assert iris is cfg.runner("IRIS_CLF")
    assert (iris.batching.max_batch_size, iris.batching.max_latency_ms) == (8, 500)
    assert iris.workers_per_resource == 2 and iris.resources == {"cpu": 2}
    text = cfg.runner("text")
    assert not text.batching.enabled and text.batching.max_batch_size == 50
    assert text.auth_token == "s3cret"
    dumped = dump_config(cfg)
    assert dumped["runners"]["iris_clf"]["batching"]["max_batch_size"] == 8
    assert build_config(dumped).runner("iris_clf") == iris


def test_config_file_and_options_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    file = tmp_path / "bentolite.yaml"
    file.write_text(
        "api_server:\n  http:\n    port: 5000\nrunners:\n  batching:\n    max_batch_size: 10\n"
        "  iris:\n    batching:\n      max_latency_ms: 200\n"
    )
    monkeypatch.setenv("BENTOLITE_CONFIG", str(file))
    monkeypatch.setenv(
        "BENTOLITE_CONFIG_OPTIONS",
        "runners.batching.max_batch_size=20 runners.iris.batching.enabled=false "
        "api_server.http.cors.access_control_allow_origins='[\"a\", \"b\"]'",
    )
    cfg = get_config()
    assert cfg is get_config()
    assert cfg.api_server.http.port == 5000
    assert cfg.runners.batching.max_batch_size == 20  # options win over the file
    iris = cfg.runner("iris")
    assert (iris.batching.max_latency_ms, iris.batching.enabled, iris.batching.max_batch_size) == (
        200, False, 20,
    )
    assert cfg.api_server.http.cors.access_control_allow_origins == ["a", "b"]


def test_runner_traffic_timeout_is_not_mistaken_for_a_1_0_key():
    cfg = build_config({"runners": {"traffic": {"timeout": 30}, "iris": {"traffic": {"timeout": 5}}}})
    assert cfg.runners.traffic.timeout == 30
    assert cfg.runner("iris").traffic.timeout == 5


def test_legacy_bentoml_env_names_are_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BENTOML_CONFIG_OPTIONS", "api_server.http.port=4000")
    assert load_config().api_server.http.port == 4000
    monkeypatch.setenv("BENTOLITE_CONFIG_OPTIONS", "api_server.http.port=4001")
    assert load_config().api_server.http.port == 4001


def test_bad_files_and_options(tmp_path: Path):
    with pytest.raises(BentoMLConfigException, match="must end in .yaml or .yml"):
        load_config(tmp_path / "c.json")
    with pytest.raises(BentoMLConfigException, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(BentoMLConfigException, match="mapping at the top level"):
        load_config(bad)
    with pytest.raises(BentoMLConfigException, match="not of the form key=value"):
        load_config(options="api_server.http.port")
    with pytest.raises(BentoMLConfigException, match="api_server.http.prot: unknown key"):
        load_config(options="api_server.http.prot=1")


def test_bentoml_1_0_keys_are_migrated():
    cfg = build_config({
        "api_server": {
            "port": 5000, "host": "127.0.0.1", "timeout": 30, "max_request_size": 1000,
            "cors": {"enabled": True, "access_control_allow_origin": "*"},
        },
        "runners": {"timeout": 100, "iris": {"timeout": 7}},
        "tracing": {"type": "zipkin", "zipkin": {"url": "http://z"},
                    "jaeger": {"address": "j", "port": 6831}},
        "logging": {"formatting": {"trace_id_format": "032x", "span_id_format": "08x"}},
    })
    http = cfg.api_server.http
    assert (http.port, http.host, http.cors.enabled) == (5000, "127.0.0.1", True)
    assert http.cors.access_control_allow_origins == "*"
    assert cfg.api_server.traffic.timeout == 30
    assert cfg.runners.traffic.timeout == 100 and cfg.runner("iris").traffic.timeout == 7
    assert cfg.tracing.exporter_type == "zipkin"
    assert cfg.tracing.zipkin == {"endpoint": "http://z"}
    assert cfg.tracing.jaeger == {"thrift": {"agent_host_name": "j", "agent_port": 6831}}
    assert cfg.api_server.logging.access.format.span_id == "08x"


def test_unknown_logging_keys_are_still_refused():
    with pytest.raises(BentoMLConfigException, match="logging: unknown key"):
        build_config({"logging": {"formatting": {"color": True}}})

"""Configuration: attrs records for every setting, loaded from YAML and env, via cattrs.

Keys follow BentoML 1.x (``api_server.*``, ``runners.*``, ``runners.<name>.*``). A file
(``BENTOLITE_CONFIG`` or ``--config``) and ``BENTOLITE_CONFIG_OPTIONS`` (``a.b=1 c.d=x``) are
deep-merged over the defaults; unknown keys are refused with their dotted path.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Optional, Union

import attrs
import cattrs
import yaml
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from .exceptions import BentoMLConfigException

__all__ = [
    "BentoliteConfig",
    "RunnerConfig",
    "BatchingConfig",
    "get_config",
    "load_config",
    "set_config",
    "runner_config",
    "bentolite_home",
]

CONFIG_ENV = "BENTOLITE_CONFIG"
OPTIONS_ENV = "BENTOLITE_CONFIG_OPTIONS"
_LEGACY_ENV = {CONFIG_ENV: "BENTOML_CONFIG", OPTIONS_ENV: "BENTOML_CONFIG_OPTIONS"}


def bentolite_home() -> Path:
    """``$BENTOLITE_HOME`` (or ``$BENTOML_HOME``), default ``~/bentolite``."""
    raw = os.environ.get("BENTOLITE_HOME") or os.environ.get("BENTOML_HOME") or "~/bentolite"
    return Path(os.path.expandvars(raw)).expanduser()


# --- records ---------------------------------------------------------------------------

@attrs.define
class TrafficConfig:
    timeout: float = 60.0
    max_concurrency: Optional[int] = None
    #: bentolite: cancel a request's handler (and its queued runner calls) when its client
    #: disconnects; off by default, as in BentoML 1.1, where handlers always run to the end
    cancel_on_disconnect: bool = False


@attrs.define
class AccessLogFormat:
    trace_id: str = "032x"
    span_id: str = "016x"


@attrs.define
class AccessLogConfig:
    enabled: bool = True
    request_content_length: bool = True
    request_content_type: bool = True
    response_content_length: bool = True
    response_content_type: bool = True
    format: AccessLogFormat = attrs.Factory(AccessLogFormat)


@attrs.define
class LoggingConfig:
    access: AccessLogConfig = attrs.Factory(AccessLogConfig)


@attrs.define
class DurationBuckets:
    buckets: list[float] = attrs.Factory(
        lambda: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    )
    min: Optional[float] = None
    max: Optional[float] = None
    factor: Optional[float] = None


@attrs.define
class ApiMetricsConfig:
    enabled: bool = True
    namespace: str = "bentoml_api_server"
    duration: DurationBuckets = attrs.Factory(DurationBuckets)


@attrs.define
class CorsConfig:
    enabled: bool = False
    access_control_allow_origins: Optional[Union[str, list[str]]] = None
    access_control_allow_credentials: Optional[bool] = None
    access_control_allow_methods: Optional[Union[str, list[str]]] = None
    access_control_allow_headers: Optional[Union[str, list[str]]] = None
    access_control_allow_origin_regex: Optional[str] = None
    access_control_max_age: Optional[int] = None
    access_control_expose_headers: Optional[Union[str, list[str]]] = None


@attrs.define
class ResponseConfig:
    trace_id: bool = False


@attrs.define
class HttpConfig:
    host: str = "0.0.0.0"
    port: int = 3000
    cors: CorsConfig = attrs.Factory(CorsConfig)
    response: ResponseConfig = attrs.Factory(ResponseConfig)
    #: bentolite: bodies above this get 413 (BentoML 1.1 had no limit).
    max_request_size_mb: float = 20.0


@attrs.define
class RunnerProbeConfig:
    enabled: bool = True
    timeout: float = 1.0
    period: float = 10.0


@attrs.define
class SslConfig:
    enabled: bool = False
    certfile: Optional[str] = None
    keyfile: Optional[str] = None
    keyfile_password: Optional[str] = None
    ca_certs: Optional[str] = None
    version: int = 17
    cert_reqs: int = 0
    ciphers: Optional[str] = "TLSv1"


@attrs.define
class ApiServerConfig:
    workers: Optional[int] = None
    backlog: int = 2048
    max_runner_connections: int = 16
    traffic: TrafficConfig = attrs.Factory(TrafficConfig)
    metrics: ApiMetricsConfig = attrs.Factory(ApiMetricsConfig)
    logging: LoggingConfig = attrs.Factory(LoggingConfig)
    ssl: SslConfig = attrs.Factory(SslConfig)
    http: HttpConfig = attrs.Factory(HttpConfig)
    runner_probe: RunnerProbeConfig = attrs.Factory(RunnerProbeConfig)


@attrs.define
class BatchingConfig:
    """Adaptive batching. Request deadline, batch wait and queue bound are separate knobs."""

    enabled: bool = True
    #: Most items (rows along batch_dim, not requests) in one model call.
    max_batch_size: int = 100
    #: Request deadline inside the runner: a request that cannot finish in time fails fast (503).
    max_latency_ms: float = 10000
    #: bentolite: longest the dispatcher may hold an idle model to grow a batch.
    max_wait_ms: float = 10
    #: bentolite: most requests waiting per method; more are refused at once (503).
    max_queue_size: int = 10000


@attrs.define
class RunnerTrafficConfig:
    timeout: float = 900.0
    max_concurrency: Optional[int] = None


@attrs.define
class RunnerMetricsConfig:
    enabled: bool = True
    namespace: str = "bentoml_runner"


@attrs.define
class RunnerConfig:
    """Settings for one runner (global ``runners.*`` merged with ``runners.<name>.*``)."""

    #: None or "system": detect; else {"cpu": 2, "nvidia.com/gpu": [0, 1]}.
    resources: Optional[Union[str, dict[str, Any]]] = None
    workers_per_resource: float = 1
    traffic: RunnerTrafficConfig = attrs.Factory(RunnerTrafficConfig)
    batching: BatchingConfig = attrs.Factory(BatchingConfig)
    logging: LoggingConfig = attrs.Factory(LoggingConfig)
    metrics: RunnerMetricsConfig = attrs.Factory(RunnerMetricsConfig)
    #: bentolite: shared secret a TCP runner server requires from callers.
    auth_token: Optional[str] = None


RUNNER_KEYS = frozenset(attrs.fields_dict(RunnerConfig))


@attrs.define
class OtlpConfig:
    protocol: Optional[str] = None
    endpoint: Optional[str] = None
    compression: Optional[str] = None
    http: Optional[dict[str, Any]] = None
    grpc: Optional[dict[str, Any]] = None


@attrs.define
class TracingConfig:
    #: console | otlp | in_memory (zipkin/jaeger are refused with a clear error).
    exporter_type: Optional[str] = None
    sample_rate: Optional[float] = None
    excluded_urls: Optional[Union[str, list[str]]] = None
    timeout: Optional[float] = None
    max_tag_value_length: Optional[int] = None
    otlp: OtlpConfig = attrs.Factory(OtlpConfig)
    zipkin: Optional[dict[str, Any]] = None
    jaeger: Optional[dict[str, Any]] = None


@attrs.define
class MonitoringConfig:
    enabled: bool = True
    type: str = "default"
    options: Optional[dict[str, Any]] = None


@attrs.define
class BentoliteConfig:
    """The whole configuration. ``runner_overrides`` holds ``runners.<name>`` sections."""

    version: int = 1
    api_server: ApiServerConfig = attrs.Factory(ApiServerConfig)
    runners: RunnerConfig = attrs.Factory(RunnerConfig)
    tracing: TracingConfig = attrs.Factory(TracingConfig)
    monitoring: MonitoringConfig = attrs.Factory(MonitoringConfig)
    runner_overrides: dict[str, RunnerConfig] = attrs.Factory(dict)

    def runner(self, name: str) -> RunnerConfig:
        """The effective config of runner ``name``."""
        return self.runner_overrides.get(name.lower(), self.runners)


# --- loading ---------------------------------------------------------------------------

_converter = cattrs.Converter(forbid_extra_keys=True)


def _str_or_list(value: Any, _: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"expected a string or a list of strings, got {value!r}")


def _resources(value: Any, _: Any) -> str | dict[str, Any] | None:
    if value is None or value == "system" or isinstance(value, dict):
        return value
    raise ValueError(f"expected 'system' or a mapping of resource to amount, got {value!r}")


_converter.register_structure_hook(Optional[Union[str, list[str]]], _str_or_list)
_converter.register_structure_hook(Optional[Union[str, dict[str, Any]]], _resources)


def _error_paths(exc: BaseException, path: str = "") -> list[str]:
    """Flatten a cattrs exception group into ``dotted.path: problem`` lines."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [f"{path}{key}: unknown key" for key in sorted(exc.extra_fields)]
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        lines: list[str] = []
        for sub in exc.exceptions:
            note = next(iter(getattr(sub, "__notes__", None) or [""]))
            where = path
            if "@ attribute " in note:
                where = f"{path}{note.split('@ attribute ', 1)[1]}."
            elif "@ index " in note:
                where = f"{path.rstrip('.')}[{note.split('@ index ', 1)[1]}]."
            lines.extend(_error_paths(sub, where))
        return lines
    return [f"{path.rstrip('.') or '<root>'}: {exc}"]


def _structure(data: dict[str, Any], cls: type, prefix: str = "", what: str = "configuration"
               ) -> Any:
    """Structure ``data`` into ``cls`` with one error naming every bad key by its path."""
    try:
        return _converter.structure(data, cls)
    except Exception as e:  # cattrs raises exception groups; flatten them
        lines = _error_paths(e, prefix)
        raise BentoMLConfigException(f"invalid {what}: " + "; ".join(lines)) from None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _migrate_v1_0(raw: dict[str, Any]) -> dict[str, Any]:
    """Map BentoML 1.0 keys onto their 1.1 places."""
    raw = copy.deepcopy(raw)
    api = raw.get("api_server") or {}
    for old in ("port", "host"):
        if old in api:
            api.setdefault("http", {})[old] = api.pop(old)
    if "cors" in api:
        cors = api.pop("cors")
        if "access_control_allow_origin" in cors:
            cors["access_control_allow_origins"] = cors.pop("access_control_allow_origin")
        api.setdefault("http", {})["cors"] = cors
    if "timeout" in api:
        api.setdefault("traffic", {})["timeout"] = api.pop("timeout")
    api.pop("max_request_size", None)
    runners = raw.get("runners") or {}
    named = [v for k, v in runners.items() if k not in RUNNER_KEYS and isinstance(v, dict)]
    for section in [runners, *named]:  # not runners.traffic itself: it has a timeout key too
        if "timeout" in section:
            section.setdefault("traffic", {})["timeout"] = section.pop("timeout")
    tracing = raw.get("tracing") or {}
    if "type" in tracing:
        tracing["exporter_type"] = tracing.pop("type")
    zipkin = tracing.get("zipkin")
    if isinstance(zipkin, dict) and "url" in zipkin:
        zipkin["endpoint"] = zipkin.pop("url")
    jaeger = tracing.get("jaeger")
    if isinstance(jaeger, dict):
        for old, new in (("address", "agent_host_name"), ("port", "agent_port")):
            if old in jaeger:
                jaeger.setdefault("thrift", {})[new] = jaeger.pop(old)
    logging_section = raw.get("logging")
    if isinstance(logging_section, dict) and isinstance(logging_section.get("formatting"), dict):
        formatting = logging_section.pop("formatting")
        access_format = (
            raw.setdefault("api_server", {}).setdefault("logging", {})
            .setdefault("access", {}).setdefault("format", {})
        )
        for key in ("trace_id", "span_id"):
            if f"{key}_format" in formatting:
                access_format[key] = formatting.pop(f"{key}_format")
        if formatting:  # anything else is unknown: leave it to be refused with its path
            logging_section["formatting"] = formatting
        if not logging_section:
            raw.pop("logging")
    return raw


def _parse_options(text: str) -> dict[str, Any]:
    """``"a.b=1 c.d='x y'"`` -> nested dict with YAML-parsed values."""
    import shlex

    out: dict[str, Any] = {}
    for item in shlex.split(text):
        if "=" not in item:
            raise BentoMLConfigException(f"config option {item!r} is not of the form key=value")
        key, _, value = item.partition("=")
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def _read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if p.suffix not in (".yaml", ".yml"):
        raise BentoMLConfigException(f"config file {p} must end in .yaml or .yml")
    if not p.is_file():
        raise BentoMLConfigException(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise BentoMLConfigException(f"config file {p} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise BentoMLConfigException(f"config file {p} must hold a mapping at the top level")
    return data


def build_config(raw: dict[str, Any]) -> BentoliteConfig:
    """Structure a merged raw dict into a ``BentoliteConfig`` (refusing unknown keys)."""
    if raw.get("version", 1) != 1:
        raise BentoMLConfigException(
            f"version: {raw['version']!r} is not supported; bentolite reads version 1 configs"
        )
    raw = _migrate_v1_0(raw)
    runners_raw = dict(raw.get("runners") or {})
    base_runner = {k: v for k, v in runners_raw.items() if k in RUNNER_KEYS}
    overrides_raw = {k: v for k, v in runners_raw.items() if k not in RUNNER_KEYS}
    top = {k: v for k, v in raw.items() if k != "runners"}
    top["runners"] = base_runner
    config = _structure(top, BentoliteConfig)
    for name, section in overrides_raw.items():
        if not isinstance(section, dict):
            raise BentoMLConfigException(
                f"runners.{name}: unknown key (runner sections must be mappings; "
                f"known runner keys are {sorted(RUNNER_KEYS)})"
            )
        merged = _deep_merge(base_runner, section)
        config.runner_overrides[name.lower()] = _structure(merged, RunnerConfig, f"runners.{name}.")
    return config


def load_config(
    path: str | os.PathLike[str] | None = None, options: str | None = None
) -> BentoliteConfig:
    """Load defaults + file + options, make the result current, and return it."""
    env = os.environ
    path = path or env.get(CONFIG_ENV) or env.get(_LEGACY_ENV[CONFIG_ENV])
    options = options if options is not None else (
        env.get(OPTIONS_ENV) or env.get(_LEGACY_ENV[OPTIONS_ENV])
    )
    raw: dict[str, Any] = {}
    if path:
        raw = _read_file(path)
    if options:
        raw = _deep_merge(raw, _parse_options(options))
    return set_config(build_config(raw))


def dump_config(config: BentoliteConfig) -> dict[str, Any]:
    """The raw dict form of ``config`` (runner overrides folded back under ``runners``)."""
    data = _converter.unstructure(config)
    overrides = data.pop("runner_overrides")
    data["runners"].update(overrides)
    return data


_current: BentoliteConfig | None = None


def set_config(config: BentoliteConfig) -> BentoliteConfig:
    global _current
    _current = config
    return config


def get_config() -> BentoliteConfig:
    """The current configuration (loaded from env on first use)."""
    return _current if _current is not None else load_config()


def runner_config(name: str) -> RunnerConfig:
    return get_config().runner(name)

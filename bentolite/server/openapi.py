"""OpenAPI 3.0 document of a Service, with BentoML v1's ``x-bentoml-*`` extension fields."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..services.service import InferenceAPI, Service

__all__ = ["openapi_spec", "INFRA_PATHS"]

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what went wrong"},
        "type": {"type": "string", "description": "error class name"},
        "field": {"type": "string", "description": "offending input field, if known"},
    },
    "required": ["error", "type"],
}
_ERRORS = {
    "400": "InvalidArgument", "404": "NotFound", "413": "PayloadTooLarge",
    "500": "InternalServerError", "503": "ServiceUnavailable", "504": "GatewayTimeout",
}

#: path -> (summary, description)
INFRA_PATHS = {
    "/healthz": ("Health check", "Health check endpoint; 200 while the process is alive."),
    "/livez": ("Liveness", "Liveness probe; 200 while the process is alive."),
    "/readyz": ("Readiness", "200 once every runner is ready, 503 naming those still loading."),
    "/metrics": ("Metrics", "Prometheus metrics in text exposition format."),
}


def _infra_path(summary: str, description: str) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["Infrastructure"],
            "summary": summary,
            "description": description,
            "operationId": f"infra__{summary.lower().replace(' ', '_')}",
            "responses": {"200": {"description": "Successful Response"}},
        }
    }


def _mime_types(descriptor: Any, which: str) -> list[str]:
    body = descriptor.openapi_request_body() if which == "in" else None
    if body is None:
        responses = descriptor.openapi_responses()
        content = responses.get("content", {}) if isinstance(responses, dict) else {}
    else:
        content = body.get("content", {})
    return list(content)


def _api_path(service_name: str, api: InferenceAPI) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "Successful Response",
                                         **api.output.openapi_responses()}}
    responses["200"].setdefault("x-bentoml-io-descriptor", api.output.to_spec())
    for status, name in _ERRORS.items():
        responses[status] = {
            "description": name,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    request_body = dict(api.input.openapi_request_body())
    request_body.setdefault("x-bentoml-io-descriptor", api.input.to_spec())
    return {
        "post": {
            "tags": ["Service APIs"],
            "x-bentoml-name": api.name,
            "operationId": f"{service_name}__{api.name}",
            "summary": repr(api),
            "description": api.doc or "",
            "requestBody": request_body,
            "responses": responses,
            "x-bentoml-consumes": _mime_types(api.input, "in"),
            "x-bentoml-produces": _mime_types(api.output, "out"),
        }
    }


def openapi_spec(service: Service) -> dict[str, Any]:
    """The document served at ``/docs.json``."""
    schemas: dict[str, Any] = {name: dict(_ERROR_SCHEMA) for name in _ERRORS.values()}
    paths: dict[str, Any] = {p: _infra_path(*texts) for p, texts in INFRA_PATHS.items()}
    for api in service.apis.values():
        paths[api.route] = _api_path(service.name, api)
        for descriptor in (api.input, api.output):
            components = descriptor.openapi_components() or {}
            schemas.update(components.get("schemas", {}))
    return {
        "openapi": "3.0.2",
        "info": {
            "title": service.name,
            "description": service.doc or f"bentolite service {service.name!r}",
            "version": service.version or "None",
            "contact": {"name": "bentolite"},
        },
        "servers": [{"url": "."}],
        "tags": [
            {"name": "Service APIs", "description": "The service's inference APIs"},
            {"name": "Infrastructure", "description": "Health, readiness and metrics"},
        ],
        "paths": paths,
        "components": {"schemas": schemas},
    }

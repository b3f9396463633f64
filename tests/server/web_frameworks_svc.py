"""BentoML 1.x's custom web serving example shape: a FastAPI app mounted at / and a Flask
app at /flask, both calling the service's runner (async and blocking)."""
from __future__ import annotations

from fastapi import FastAPI
from flask import Flask, jsonify, request
from pydantic import BaseModel

import bentolite
from bentolite.io import JSON


class Scaler(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=True, batch_dim=0)
    def scale(self, values: list[float]) -> list[float]:
        return [10 * v for v in values]


scaler = bentolite.Runner(Scaler, name="scaler")
svc = bentolite.Service("web_frameworks", runners=[scaler])


@svc.api(input=JSON(), output=JSON())
async def scale(values: list[float]) -> list[float]:
    return await scaler.scale.async_run(values)


class Values(BaseModel):
    values: list[float]


fastapi_app = FastAPI()


@fastapi_app.get("/metadata")
def metadata() -> dict[str, str]:
    return {"name": svc.name}


@fastapi_app.post("/fastapi/scale")
async def fastapi_scale(body: Values) -> dict[str, list[float]]:
    return {"scaled": await scaler.scale.async_run(body.values)}


@fastapi_app.post("/fastapi/scale_sync")
def fastapi_scale_sync(body: Values) -> dict[str, list[float]]:  # FastAPI's thread pool
    return {"scaled": scaler.scale.run(body.values)}


flask_app = Flask(__name__)


@flask_app.route("/scale", methods=["POST"])
def flask_scale():  # noqa: ANN201
    return jsonify(scaled=scaler.scale.run(request.get_json()["values"]), path=request.path,
                   script_root=request.script_root)


svc.mount_asgi_app(fastapi_app)
svc.mount_wsgi_app(flask_app, path="/flask")

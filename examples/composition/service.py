"""The patterns of BentoML's model-composition guide that run on one machine.

- ``MultiModelService``: two models in one service, one API each and a combined one.
- ``InferenceService``: a sequential pipeline; ``PreprocessingService`` runs in its own
  process (``resources={"cpu": 1}``: one thread) and InferenceService awaits it.
- ``EnsembleService``: ``ModelAService`` (two worker processes) and ``ModelBService`` called
  at the same time with ``asyncio.gather``, then averaged.

Serve one of the roots: ``bentolite serve service:EnsembleService`` (see README.md).
"""
from __future__ import annotations

import asyncio
import typing as t

import numpy as np

import bentolite as bentoml


@bentoml.service(resources={"cpu": 1}, traffic={"timeout": 20})
class MultiModelService:
    model_a_ref = bentoml.models.get("model_a:latest")
    model_b_ref = bentoml.models.get("model_b:latest")

    def __init__(self) -> None:
        self.model_a = bentoml.picklable_model.load_model(self.model_a_ref)
        self.model_b = bentoml.picklable_model.load_model(self.model_b_ref)

    @bentoml.api
    def process_a(self, input_data: t.List[float]) -> t.List[float]:
        return self.model_a(np.asarray(input_data)).tolist()

    @bentoml.api
    def process_b(self, input_data: t.List[float]) -> t.List[float]:
        return self.model_b(np.asarray(input_data)).tolist()

    @bentoml.api
    def combined_process(self, input_data: t.List[float]) -> t.Dict[str, t.Any]:
        return {"result_a": self.process_a(input_data), "result_b": self.process_b(input_data)}


@bentoml.service(resources={"cpu": 1})
class PreprocessingService:
    model_a_ref = bentoml.models.get("model_a:latest")

    def __init__(self) -> None:
        self.model_a = bentoml.picklable_model.load_model(self.model_a_ref)

    @bentoml.api
    def preprocess(self, input_data: np.ndarray) -> np.ndarray:
        return self.model_a(input_data)


@bentoml.service
class InferenceService:
    model_b_ref = bentoml.models.get("model_b:latest")
    preprocessing_service = bentoml.depends(PreprocessingService)

    def __init__(self) -> None:
        self.model_b = bentoml.picklable_model.load_model(self.model_b_ref)

    @bentoml.api
    async def predict(self, input_data: np.ndarray) -> np.ndarray:
        preprocessed = await self.preprocessing_service.to_async.preprocess(input_data)
        return self.model_b(preprocessed)


@bentoml.service(workers=2)
class ModelAService:
    model_a_ref = bentoml.models.get("model_a:latest")

    def __init__(self) -> None:
        self.model = bentoml.picklable_model.load_model(self.model_a_ref)

    @bentoml.api(batchable=True)
    def predict(self, input_data: np.ndarray) -> np.ndarray:
        return self.model(input_data)


@bentoml.service
class ModelBService:
    model_b_ref = bentoml.models.get("model_b:latest")

    def __init__(self) -> None:
        self.model = bentoml.picklable_model.load_model(self.model_b_ref)

    @bentoml.api(batchable=True)
    def predict(self, input_data: np.ndarray) -> np.ndarray:
        return self.model(input_data)


@bentoml.service
class EnsembleService:
    service_a = bentoml.depends(ModelAService)
    service_b = bentoml.depends(ModelBService)

    @bentoml.api
    async def ensemble_predict(self, input_data: np.ndarray) -> np.ndarray:
        result_a, result_b = await asyncio.gather(
            self.service_a.to_async.predict(input_data),
            self.service_b.to_async.predict(input_data),
        )
        return (result_a + result_b) / 2

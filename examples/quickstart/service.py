"""Classify iris flowers: 4 measurements per row in, one class index per row out."""
from __future__ import annotations

import numpy as np

import bentolite as bentoml
from bentolite.io import NumpyNdarray

iris_clf_runner = bentoml.sklearn.get("iris_clf:latest").to_runner()
svc = bentoml.Service("iris_classifier", runners=[iris_clf_runner])


@svc.api(input=NumpyNdarray(dtype="float64", shape=(-1, 4), enforce_shape=True),
         output=NumpyNdarray())
async def classify(rows: np.ndarray) -> np.ndarray:
    """The class (0 setosa, 1 versicolor, 2 virginica) of each row."""
    return await iris_clf_runner.predict.async_run(rows)

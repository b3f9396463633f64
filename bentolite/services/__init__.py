"""Service definition: Service, InferenceAPI, Context and the ``module:svc`` loader."""

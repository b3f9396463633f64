"""HTTP serving: API server app, supervisor, OpenAPI and metrics."""

"""Executions: the pipeline that runs an endpoint, its logs and the health derived from them."""

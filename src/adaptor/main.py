"""ASGI entry point for process managers: `uvicorn adaptor.main:app` (and each worker of
`adaptor serve --workers N`), with the same JSON logging as `adaptor serve`."""

from adaptor.app import create_app
from adaptor.config import load_settings
from adaptor.observability.logging import configure_logging

_settings = load_settings()
configure_logging(_settings.log_level)
app = create_app(_settings)

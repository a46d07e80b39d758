"""ASGI entry point for process managers: `uvicorn adaptor.main:app`."""

from adaptor.app import create_app

app = create_app()

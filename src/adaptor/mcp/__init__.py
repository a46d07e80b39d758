"""The Model Context Protocol server at `/mcp`: every enabled endpoint of a tenant's enabled
integrations as a tool, called through the same pipeline as `POST /execute`."""

from adaptor.mcp.catalog import ToolCatalog
from adaptor.mcp.server import McpService

__all__ = ["McpService", "ToolCatalog"]

"""List the tools of the Adaptor Service's MCP server and call one, with the official SDK.

    .venv/bin/python examples/mcp_call.py http://127.0.0.1:8004 "$KEY"               # list
    .venv/bin/python examples/mcp_call.py http://127.0.0.1:8004 "$KEY" TOOL '{"variables": {}}'

KEY is a tenant API key (an admin key also needs X-Tenant-ID: set ADAPTOR_TENANT).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(base_url: str, key: str, tool: str | None, arguments: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    if os.environ.get("ADAPTOR_TENANT"):
        headers["X-Tenant-ID"] = os.environ["ADAPTOR_TENANT"]
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client,
    ):
        print(f"protocol {client.protocol_version}")
        if tool is None:
            for listed in (await client.list_tools()).tools:
                print(f"{listed.name}\t{listed.title}")
            return
        result = await client.call_tool(tool, json.loads(arguments))
        print("isError:", result.is_error)
        for block in result.content:
            print("text:", getattr(block, "text", block))
        print("structuredContent:", json.dumps(result.structured_content, indent=2))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    asyncio.run(
        main(
            sys.argv[1],
            sys.argv[2],
            sys.argv[3] if len(sys.argv) > 3 else None,
            sys.argv[4] if len(sys.argv) > 4 else "{}",
        )
    )

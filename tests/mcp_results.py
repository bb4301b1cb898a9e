"""Reading an MCP tool's result in the tests of both transports (tests/mcp)."""

from __future__ import annotations

from typing import Any

from mcp_types import CallToolResult


def text(result: CallToolResult) -> str:
    """The result's one text block."""
    [block] = result.content
    assert block.type == "text"
    return block.text


def data(result: CallToolResult) -> dict[str, Any]:
    """The result's structured content."""
    assert isinstance(result.structured_content, dict), result
    return result.structured_content

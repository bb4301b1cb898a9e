"""``python -m vmctl.mcp``: ``vmctl mcp`` without the rest of the CLI."""

from vmctl.mcp.cli import mcp_command

mcp_command(prog_name="vmctl mcp")

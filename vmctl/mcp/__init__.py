"""vmctl's tools for LLM agents over the Model Context Protocol (docs/mcp.md).

``vmctl mcp`` serves them over stdio against the local daemon (starting one when none
runs: :mod:`vmctl.mcp.stdio`); the daemon serves the same tools over streamable HTTP at
``/mcp`` (:mod:`vmctl.mcp.http`). Either way a tool is a call of the REST API through
:mod:`vmctl.client`, all of them in :mod:`vmctl.mcp.adapter`; :mod:`vmctl.mcp.tools`
defines the tools and :mod:`vmctl.mcp.replies` shapes what they answer.

It imports :mod:`vmctl.client` and :mod:`vmctl.api` of vmctl. The MCP SDK is imported
only by ``tools`` and what runs it, so ``vmctl --help`` and the daemon's start pay nothing
for it (``cli`` and ``http`` import it when they serve).
"""

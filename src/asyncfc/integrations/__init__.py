"""asyncfc under other hosts: toolsets for agent frameworks and an MCP proxy.

Each integration is its own module and imports its framework only when used, so
``import asyncfc`` never needs one: ``asyncfc.integrations.pydantic_ai``,
``asyncfc.integrations.openai_agents``, ``asyncfc.integrations.langgraph``.
"""

__all__: list[str] = []  # each integration is imported by its own module name, as above

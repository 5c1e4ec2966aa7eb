"""The task service: storage, task operations and the MCP tool server."""

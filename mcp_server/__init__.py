"""The task service, the ground floor, in two parts.

The MCP tools (`tools`, with `arguments` and `token_auth`) stand on the task core: settings, every table and its
migrations, the service functions, and the outbox writer that adds each change's event in the same transaction.
Nothing here imports another TaskFlow package.
"""

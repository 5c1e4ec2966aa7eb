"""The TaskFlow agent: turns what a person says into task tool calls.

The tool loop over an MCP client session, the Gemini model, the offline interpreter and conversation memory. Stands
on mcp_server; knows nothing of the chat or of how events travel.
"""

"""Task events after the commit: the relay, its transports, the consumers and the reminder scheduler.

Stands on mcp_server (whose outbox writer records the events); also every server's health and metrics routes.
"""

"""The TaskFlow chat: the web interface people talk to, and the server (`launcher`) that runs it.

Stands on the agent, the event services and the task service; only the `taskflow` package sits above it.
"""

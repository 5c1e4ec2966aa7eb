"""Where each TaskFlow process starts: the `taskflow` command, and the HTTP app of `taskflow serve mcp`.

The top floor: it wires the chat, the agent, the event services and the task service into processes, and
nothing below imports it.
"""

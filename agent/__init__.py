"""The TaskFlow agent: turns what a person says into task tool calls."""

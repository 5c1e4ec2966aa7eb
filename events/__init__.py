"""Task events: the outbox, its relay and the consumers that react to changes."""

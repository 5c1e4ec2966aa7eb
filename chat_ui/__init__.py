"""The TaskFlow chat: the web interface people talk to."""

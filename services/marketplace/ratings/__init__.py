"""Space ratings after a completed reservation."""

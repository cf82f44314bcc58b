"""Models written for other runtimes (optional extras; nothing in the core imports this)."""

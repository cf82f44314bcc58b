"""Bridges to other tools' schedulers (optional extras; nothing here is imported by the core)."""

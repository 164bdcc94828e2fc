"""Views of the tidy frames: tables (great-tables), figures (matplotlib), credibility (ICEMAN)."""

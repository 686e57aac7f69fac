"""adelia.engine."""

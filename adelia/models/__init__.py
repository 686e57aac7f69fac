"""adelia.models."""

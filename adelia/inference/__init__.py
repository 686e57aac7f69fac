"""adelia.inference."""

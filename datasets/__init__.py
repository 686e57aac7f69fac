"""Data files shipped with adelia (installed as the package ``adelia.data``)."""

"""The package version; image tags default to it."""

__version__ = "0.1.0"

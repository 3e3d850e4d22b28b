"""The package version (one place: pyproject.toml's `version` is checked against it by a test)."""

__version__ = "0.1.0"

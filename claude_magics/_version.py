"""The package version: a leaf, so any module can import it without importing the package face."""

__version__ = "0.1.0"

"""restoro: a content-addressed, incremental build system for film and TV restoration."""

__version__ = "0.1.0"

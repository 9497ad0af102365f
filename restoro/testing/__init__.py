"""Test helpers usable by restoro's own suite and by plugin authors: synthetic media."""

from restoro.testing.synth import make_source, shot_starts

__all__ = ["make_source", "shot_starts"]

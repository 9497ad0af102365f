"""Captions: cue files (SRT, WebVTT, SCC, IMSC) read and written, embedded CEA-608, checks."""

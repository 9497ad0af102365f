"""Deliverables: ProRes masters (``prores``) and their audio (``audio``)."""

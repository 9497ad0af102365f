"""Addresses of the review page, shared by the server and the pages that link to it (QC report).

The page of a shot is ``/shots/<shot id, percent-encoded>`` under the server's base URL
(``restoro review`` prints it; by default ``http://127.0.0.1:8765``).
"""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_BASE = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def shot_path(shot_id: str) -> str:
    """``/shots/ep1%4000%3A00%3A01%3A00`` for ``ep1@00:00:01:00``."""
    return "/shots/" + quote(shot_id, safe="")


def shot_url(shot_id: str, base: str = DEFAULT_BASE) -> str:
    """The review page of a shot under ``base``."""
    return base.rstrip("/") + shot_path(shot_id)

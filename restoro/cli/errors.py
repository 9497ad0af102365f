"""One table from exception type to exit status; a traceback only with RESTORO_DEBUG=1."""

from __future__ import annotations

import os
import sys
import traceback

from restoro.errors import InputError, RestoroError, disk_full

# Checked in order; the first matching type wins.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InputError, 2),
    (RestoroError, 1),
    (KeyboardInterrupt, 130),
)


def exit_code_for(exc: BaseException) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def report(exc: BaseException) -> int:
    """Print an error the way users should see it and return the exit status."""
    code = exit_code_for(exc)
    if os.environ.get("RESTORO_DEBUG") == "1":
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, RestoroError):
        print(exc.render(), file=sys.stderr)
    elif isinstance(exc, OSError) and (full := disk_full(exc)):
        print(f"error[E510]: {full}", file=sys.stderr)
        print(
            "  hint: free space on that disk (or raise the quota), then run again; finished "
            "actions are cached",
            file=sys.stderr,
        )
    elif isinstance(exc, KeyboardInterrupt):
        print("interrupted; finished actions are cached", file=sys.stderr)
    else:
        print(f"error[E999]: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  hint: rerun with RESTORO_DEBUG=1 for a traceback, and report it", file=sys.stderr)
    return code

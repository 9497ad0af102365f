"""The error hierarchy: one root, one subclass per layer, each with a stable code and a hint.

The CLI maps these types to messages and exit codes in one table (``restoro.cli.errors``):
``InputError`` and its subclasses exit 2 (bad manifest, arguments or media), everything else
that is a ``RestoroError`` exits 1 (a build, tool or store failure).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field


class RestoroError(Exception):
    """Root of every error restoro raises on purpose."""

    code: str = "E000"
    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        location: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        if code is not None:
            self.code = code

    def render(self) -> str:
        """One or two lines: ``location: error[CODE]: message`` and the hint."""
        head = f"{self.location}: " if self.location else ""
        text = f"{head}error[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


class InputError(RestoroError):
    """Invalid input from the user: manifest, arguments, media. Exit status 2."""

    code = "E100"
    exit_code = 2


class UsageError(InputError):
    """Bad command-line arguments (unknown target, unknown variant on the command line...)."""

    code = "E101"


@dataclass(frozen=True)
class Diagnostic:
    """One manifest finding at a position: ``file:line:col: error[CODE]: message``."""

    file: str
    line: int
    col: int
    code: str
    message: str
    hint: str | None = None
    severity: str = "error"
    snippet: list[str] = field(default_factory=list)

    def render(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.severity}[{self.code}]: {self.message}"
        for line in self.snippet:
            text += f"\n  {line}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ManifestError(InputError):
    """The manifest has one or more errors; all of them are in ``diagnostics``."""

    code = "E200"

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        n = len(diagnostics)
        super().__init__(f"{n} error{'s' if n != 1 else ''} in the manifest")

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class MediaError(InputError):
    """A source file is missing, unreadable, truncated or not media restoro can use."""

    code = "E300"


class ToolError(RestoroError):
    """An external tool (ffmpeg) failed; carries its argv and the tail of its log."""

    code = "E400"

    def __init__(
        self, message: str, *, argv: list[str], log_tail: str, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = argv
        self.log_tail = log_tail

    def render(self) -> str:
        text = super().render()
        text += "\n  command: " + " ".join(self.argv)
        if self.log_tail:
            text += "\n  log:\n" + "\n".join("    " + ln for ln in self.log_tail.splitlines())
        return text


class StoreError(RestoroError):
    """The store is unusable (permissions, corrupt metadata that cannot be quarantined)."""

    code = "E500"


class CorruptEntry(StoreError):
    """A store entry failed verification; it has been quarantined and will be rebuilt."""

    code = "E501"


class LockTimeout(RestoroError):
    """The workspace lock could not be acquired in time."""

    code = "E600"


class BuildFailed(RestoroError):
    """One or more actions failed."""

    code = "E700"


class StageError(RestoroError):
    """A stage failed while running an action (bad model, invalid frames...)."""

    code = "E710"


def disk_full(exc: OSError) -> str | None:
    """``no space left on device writing PATH`` for a full disk (or quota), else None."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on device"
    path = exc.filename2 or exc.filename  # a copy names (source, destination)
    return f"{what} writing {path}" if path else what

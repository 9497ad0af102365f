"""The stage plugin shape: an id, a version, frozen pydantic ``Params``, a descriptor, one method.

Two kinds of stage exist. A *source stage* (``ingest``) reads a source file and writes working
frames; a *frame stage* maps an iterator of frames to an iterator of frames, so a shot's chain
runs as one streaming pipeline and is materialised only at cache points.

Working frames are ``numpy.ndarray`` of shape (height, width, 3), dtype ``uint16``, RGB, full
range; their format (size, rate, aspect, colour) travels beside them as a ``FrameFormat``.
Heavy imports (torch, av, spandrel) belong inside the methods, never at module level.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy as np

    from restoro.media.frames import FrameFormat


class StageParams(BaseModel):
    """Base of every stage's parameters: frozen, unknown keys refused, strict types (as the
    manifest's own fields: ``scale: "2"`` is an error, not 2)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StageDescriptor(BaseModel):
    """What a stage needs from the executor, and what it depends on besides its params."""

    model_config = ConfigDict(frozen=True)

    gpu: bool = False
    """Runs on a GPU slot when one is available (a cache point follows every GPU stage)."""
    memory_mb: int = 512
    temporal_radius: int = 0
    """Neighbouring frames a frame stage needs on each side (never across a shot boundary)."""
    tools: tuple[str, ...] = ()
    """External tools whose fingerprint enters the action key (e.g. ``("ffmpeg",)``)."""


@dataclass(frozen=True)
class StageEnv:
    """What a stage may consult at plan time: the manifest's directory and the store."""

    root: Path
    store: Any


@dataclass
class StageContext:
    """Everything a stage may know about the action it runs in, besides frames and params."""

    fmt: FrameFormat
    shot_id: str
    work_dir: Path
    device: str = "cpu"
    seed: int = 0
    inputs: dict[str, Path] = field(default_factory=dict)
    """Extra inputs by name (e.g. ``model:upscale`` → the model file in the store)."""
    extra: dict[str, Any] = field(default_factory=dict)


class Stage(ABC):
    """Common class attributes of all stages."""

    id: ClassVar[str]
    version: ClassVar[int]
    Params: ClassVar[type[StageParams]]
    descriptor: ClassVar[StageDescriptor] = StageDescriptor()

    @classmethod
    def parse_params(cls, raw: dict[str, Any]) -> StageParams:
        return cls.Params.model_validate(raw)


class FrameStage(Stage):
    """A stage that maps frames to frames."""

    def output_format(self, params: StageParams, fmt: FrameFormat) -> FrameFormat:
        """The format of the frames ``process`` yields, given the input format."""
        return fmt

    def check(self, params: StageParams) -> None:  # noqa: B027 - optional hook
        """Fail early (at plan time) with a StageError if the params cannot run here."""

    def model_inputs(self, params: StageParams, env: StageEnv) -> dict[str, str]:
        """Content this stage depends on besides frames: input name (``model:…``) → digest of a
        blob that is in the store (put it there first, e.g. ``env.store.put_file``).

        Called at plan time; the digests enter the action key (a changed model file reruns the
        shots that use it), and ``StageContext.inputs`` maps the names to files at run time.
        """
        return {}

    def ffmpeg_filter(self, params: StageParams, fmt: FrameFormat) -> str | None:
        """The ffmpeg filter that does exactly what ``process`` does to ``gbrp16le`` frames of
        ``fmt``, or None. A chain made only of such stages runs as one ffmpeg transcode."""
        return None

    def uses_device(self, params: StageParams) -> bool:
        """Whether these params run on the device (a GPU slot), e.g. a model."""
        return self.descriptor.gpu

    @abstractmethod
    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        """Yield output frames; must be deterministic for identical inputs."""

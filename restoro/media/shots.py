"""Shot detection on an intermediate with PySceneDetect's detectors.

We feed the detector ourselves — frames decoded from the intermediate, reduced to 8-bit
BGR and box-downscaled in numpy — so detection is deterministic and needs no OpenCV video
backend. Cut positions are frame indices relative to the intermediate's first frame.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from restoro.errors import StageError

if TYPE_CHECKING:
    from pathlib import Path

    from scenedetect.detector import SceneDetector

DETECTORS = ("content", "adaptive", "threshold", "none")
ANALYSIS_WIDTH = 256
"""Frames are box-averaged down to about this width before detection (as PySceneDetect does)."""


def _detector(detector: str, threshold: float, min_frames: int) -> SceneDetector:
    from scenedetect import AdaptiveDetector, ContentDetector, ThresholdDetector

    if detector == "content":
        return ContentDetector(threshold=threshold, min_scene_len=min_frames)
    if detector == "adaptive":
        return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_frames)
    if detector == "threshold":
        return ThresholdDetector(threshold=threshold, min_scene_len=min_frames)
    raise StageError(f"unknown shot detector {detector!r}", hint=f"use one of {DETECTORS}")


def analysis_frame(frame: np.ndarray) -> np.ndarray:
    """A 16-bit RGB working frame → a small 8-bit BGR image for the detectors."""
    h, w = frame.shape[:2]
    k = max(1, w // ANALYSIS_WIDTH)
    if k > 1:
        hh, ww = h - h % k, w - w % k
        # Exact integer box sums, row by row of each block and then column by column: ten
        # times faster than one sum over two axes of a widened copy, with the same result.
        blocks = frame[:hh, :ww].reshape(hh // k, k, ww // k, k, 3)
        rows = blocks[:, 0].astype(np.uint32)
        for i in range(1, k):
            rows += blocks[:, i]
        total = rows[:, :, 0].copy()
        for j in range(1, k):
            total += rows[:, :, j]
        frame = (total // (k * k)).astype(np.uint16)
    return np.ascontiguousarray((frame[..., ::-1] >> 8).astype(np.uint8))


def detect_cuts(
    path: Path, *, detector: str = "content", threshold: float = 27.0, min_frames: int = 12
) -> list[int]:
    """Frame indices where a new shot starts in the intermediate at ``path`` (0 excluded)."""
    from scenedetect import FrameTimecode

    from restoro.media.frameio import read_format, read_frames

    if detector == "none":
        return []
    det = _detector(detector, threshold, min_frames)
    rate = Fraction(read_format(path).frame_rate)
    cuts: set[int] = set()
    last = None
    for i, frame in enumerate(read_frames(path)):
        last = FrameTimecode(i, fps=rate)
        cuts.update(tc.frame_num for tc in det.process_frame(last, analysis_frame(frame)))
    if last is not None:
        cuts.update(tc.frame_num for tc in det.post_process(last))
    return sorted(c for c in cuts if c > 0)


class FrameScorer:
    """The per-frame score a detector decides from, fed one working frame at a time in order:
    ``content`` (the content and adaptive detectors: ContentDetector's weighted change from the
    frame before) or ``mean`` (the threshold detector: mean intensity). The first ``content``
    score is 0.0, as the title's first frame scores in one detector run, unless ``warm`` gave
    the frame before it."""

    def __init__(self, metric: str, rate: Fraction) -> None:
        if metric not in ("content", "mean"):
            raise StageError(f"unknown shot score {metric!r}", hint="use content or mean")
        self.metric = metric
        self.rate = rate
        self.scores: list[float] = []
        self._det = None
        if metric == "content":
            from scenedetect import ContentDetector

            self._det = ContentDetector()

    def warm(self, frame: np.ndarray) -> None:
        """Make ``frame`` the frame before the next one scored (no score of its own)."""
        if self._det is not None:
            self._score(-1, frame)

    def add(self, frame: np.ndarray) -> None:
        if self._det is None:
            self.scores.append(float(np.mean(analysis_frame(frame))))
        else:
            self.scores.append(self._score(len(self.scores), frame))

    def _score(self, i: int, frame: np.ndarray) -> float:
        from scenedetect import FrameTimecode

        assert self._det is not None
        return float(
            self._det._calculate_frame_score(
                FrameTimecode(i + 1, fps=self.rate), analysis_frame(frame)
            )
        )

    def array(self) -> np.ndarray:
        return np.array(self.scores, dtype=np.float64)


def frame_scores(path: Path, *, metric: str, before: Path | None = None) -> np.ndarray:
    """``FrameScorer``'s scores of every frame of the intermediate at ``path``.

    ``before`` is the intermediate of the frames just before these (the title's previous
    piece): its last frame is what the first frame's ``content`` score compares with. Without
    it the first frame scores 0.0, as the title's first frame does in one detector run.
    """
    from restoro.media.frameio import read_format, read_frames, read_last_frame

    scorer = FrameScorer(metric, Fraction(read_format(path).frame_rate))
    if before is not None:
        scorer.warm(read_last_frame(before))
    for frame in read_frames(path):
        scorer.add(frame)
    return scorer.array()


def boundary_score(before: Path, path: Path) -> float:
    """The ``content`` score of the first frame of the intermediate at ``path`` when the last
    frame of the intermediate ``before`` comes just before it (a title's next piece): two
    frames decoded."""
    from restoro.media.frameio import read_format, read_frames, read_last_frame

    scorer = FrameScorer("content", Fraction(read_format(path).frame_rate))
    scorer.warm(read_last_frame(before))
    frames = read_frames(path)
    try:
        first = next(frames)
    except StopIteration:
        raise StageError(f"intermediate {path} has no frames") from None
    finally:
        frames.close()  # type: ignore[attr-defined]
    scorer.add(first)
    return scorer.scores[0]


def cuts_from_scores(
    scores: np.ndarray,
    *,
    detector: str = "content",
    threshold: float = 27.0,
    min_frames: int = 12,
    frame_rate: str = "24",
) -> list[int]:
    """The cuts ``detect_cuts`` finds in a title whose frames score ``scores``
    (``frame_scores`` of its pieces, in order): PySceneDetect's own detector decides, fed the
    scores instead of recomputing them from pictures, so its state across frames — the flash
    filter's minimum scene length, the adaptive window, the threshold's fades — runs over the
    whole title as in one detector run."""
    from scenedetect import FrameTimecode

    if detector == "none" or len(scores) == 0:
        return []
    det = _detector(detector, threshold, min_frames)
    rate = Fraction(frame_rate)
    values = [float(s) for s in scores]
    if detector == "threshold":

        def frame_of(i: int) -> np.ndarray:
            return np.array([values[i]])  # whose mean is the frame's mean intensity, exactly

    else:
        det._calculate_frame_score = lambda tc, _img: values[tc.frame_num]  # type: ignore[method-assign]

        def frame_of(i: int) -> np.ndarray:
            return np.empty(0)

    cuts: set[int] = set()
    last = None
    for i in range(len(values)):
        last = FrameTimecode(i, fps=rate)
        cuts.update(tc.frame_num for tc in det.process_frame(last, frame_of(i)))
    if last is not None:
        cuts.update(tc.frame_num for tc in det.post_process(last))
    return sorted(c for c in cuts if c > 0)

"""`restoro shots TITLE [--json] [--thumbnails]`: ids, title frames, source timecodes, and a PNG
of each shot's first frame taken from the shot's frames in the store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
import pytest
from buildkit import build, cli

from restoro.testing.synth import shot_starts

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.slow
def test_shots_lists_timecodes_and_writes_thumbnails(workspace: Path, tmp_path: Path) -> None:
    assert build(workspace).failed == 0
    res = cli("shots", "ep1", "--json", "--thumbnails", cwd=workspace.parent)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["start"] for r in rows] == [0, *shot_starts(3, 12)]
    for r, nxt in zip(rows, rows[1:], strict=False):
        assert r["end"] == nxt["start"] and r["tc_out"] == nxt["tc_in"]
    for r in rows:
        assert r["id"] == f"ep1@{r['tc_in']}"
    assert rows[-1]["tc_out"].endswith("01;06") or rows[-1]["tc_out"].endswith("01:06")  # 36 f
    thumbs = []
    for r in rows:
        png = workspace.parent / r["thumbnail"]
        assert png.parent == workspace.parent / "out" / "shots" / "ep1"
        img = cv2.imread(str(png))
        assert img is not None and img.shape == (144, 192, 3)  # 4:3, square pixels
        thumbs.append(img.astype(int))
    # each is its shot's first frame: shots differ, and the first matches the source's frame 0
    assert np.abs(thumbs[0] - thumbs[1]).mean() > 10
    with av.open(str(workspace.parent / "media" / "source.mkv")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i in (0, 12):  # PyAV converts with BT.601, as the source is coded
                rgb = cv2.resize(frame.to_ndarray(format="rgb24"), (192, 144),
                                 interpolation=cv2.INTER_AREA)  # fmt: skip
                want = rgb[..., ::-1].astype(int)
                assert np.abs(thumbs[i // 12] - want).mean() < 6

    # Without --thumbnails: a table, no files written again
    res = cli("shots", "ep1", cwd=workspace.parent)
    assert res.returncode == 0 and "ep1@" in res.stdout and "source in" in res.stdout

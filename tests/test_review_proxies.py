"""Review proxies' sizes and keys, and the server's idea of loopback (fast, no build)."""

from __future__ import annotations

import pytest

from restoro.review import proxies as P
from restoro.review.server import is_loopback


@pytest.mark.parametrize(
    ("fmt", "size"),
    [
        ({"width": 720, "height": 480, "sar": "8:9"}, (640, 480)),  # NTSC DVD, 4:3
        ({"width": 720, "height": 480, "sar": "32:27"}, (640, 360)),  # NTSC DVD, 16:9
        ({"width": 1440, "height": 1080, "sar": "1:1"}, (640, 480)),
        ({"width": 1920, "height": 1080, "sar": "1:1"}, (640, 360)),
        ({"width": 160, "height": 120, "sar": "1:1"}, (640, 480)),
        ({"width": 2048, "height": 858, "sar": "1:1"}, (640, 268)),  # scope
    ],
)
def test_display_size_keeps_the_aspect_within_640x480(
    fmt: dict[str, object], size: tuple[int, int]
) -> None:
    got = P.display_size(fmt)
    assert (got.width, got.height) == size
    assert got.width % 2 == 0 and got.height % 2 == 0  # yuv420p needs even sizes


def test_proxy_keys_follow_frames_size_and_kind() -> None:
    def spec(**kw: object) -> str:
        args: dict[str, object] = {
            "shot": "ep1@00:00:00:00",
            "role": "safe",
            "kind": "video",
            "frames": "xxh128:aa",
            "count": 12,
            "frame_rate": "24000/1001",
            "size": P.Size(640, 480),
        }
        return P.proxy_spec(**{**args, **kw}).key()[0]  # type: ignore[arg-type]

    base = spec()
    assert spec() == base
    assert spec(role="clean") == base  # same frames, same proxy: shared by key
    assert spec(frames="xxh128:bb") != base
    assert spec(size=P.Size(640, 360)) != base
    assert spec(kind="thumb") != base
    with pytest.raises(ValueError, match="still"):
        spec(kind="still")


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("localhost", True),
        ("10.1.2.3", False),
        ("192.0.2.2", False),
        ("::ffff:10.0.0.1", False),
        ("", False),
        (None, False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_loopback(host: str | None, loop: bool) -> None:
    assert is_loopback(host) is loop

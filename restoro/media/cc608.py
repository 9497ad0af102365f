"""CEA-608 closed captions as byte pairs per frame: channels, parity, and SCC text.

A picture's caption data (ATSC A/53 ``cc_data`` or the DVD ``CC`` user-data form; ffmpeg's
MPEG-2 decoder turns both into A/53 side data) carries byte pairs for field 1 (CC1/CC2) and
field 2 (CC3/CC4). Here the pairs of one channel are picked out of such data, remapped to CC1
codes, and written as Scenarist SCC text whose timecode labels count frames, so the existing
SCC reader turns them into timed cues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

PAD = (0x80, 0x80)


def odd_parity(b: int) -> int:
    """``b`` (7 bits) with its parity bit set so the byte has an odd number of ones."""
    b &= 0x7F
    return b | (0x80 if bin(b).count("1") % 2 == 0 else 0)


def a53_pairs(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(field, byte1, byte2) of the valid 608 triplets of A/53 side data (field 1 or 2)."""
    for i in range(0, len(data) - 2, 3):
        head = data[i]
        if not head & 0x04:  # cc_valid
            continue
        cc_type = head & 0x03
        if cc_type in (0, 1):
            yield cc_type + 1, data[i + 1], data[i + 2]


def field_of(channel: int) -> int:
    return 1 if channel in (1, 2) else 2


def channel_pairs(
    frames: Sequence[Sequence[tuple[int, int]]], channel: int
) -> list[tuple[int, int]]:
    """One pair per frame for ``channel`` (1..4), remapped to CC1 codes; other data padded.

    ``frames``: per frame, the pairs of the channel's field in order. A frame carrying more than
    one pair (the DVD form packs a GOP's worth into its first picture) spreads them over the
    following frames, as a player would feed them to the decoder.
    """
    second = channel in (2, 4)
    current = False  # whether the data channel now selected is the second of the field
    out: list[tuple[int, int]] = []
    queue: list[tuple[int, int]] = []
    for pairs in frames:
        queue.extend(pairs)
        out.append(queue.pop(0) if queue else PAD)
    out.extend(queue)
    picked: list[tuple[int, int]] = []
    for b1, b2 in out:
        c1, c2 = b1 & 0x7F, b2 & 0x7F
        if c1 == 0 and c2 == 0:
            picked.append(PAD)
            continue
        if 0x10 <= c1 <= 0x1F:
            current = bool(c1 & 0x08)
            if current != second:
                picked.append(PAD)
                continue
            if c1 in (0x14, 0x15, 0x1C, 0x1D) and 0x20 <= c2 <= 0x2F:
                c1 = 0x14  # miscellaneous control code of CC1
            else:
                c1 &= ~0x08
            picked.append((odd_parity(c1), odd_parity(c2)))
        elif c1 < 0x10:  # extended data services (field 2): not captions
            picked.append(PAD)
        elif current == second:
            picked.append((b1, b2))
        else:
            picked.append(PAD)
    return picked


def has_data(pairs: Iterable[tuple[int, int]]) -> bool:
    return any((b1 & 0x7F) or (b2 & 0x7F) for b1, b2 in pairs)


def ndf_label(frame: int) -> str:
    """Non-drop-frame SCC timecode of ``frame`` (30 labels a second, read at 29.97)."""
    s, ff = divmod(frame, 30)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}"


def to_scc(pairs: Sequence[tuple[int, int]], *, start: int = 0) -> str:
    """SCC text of one pair per frame (frame ``i`` labelled ``start + i``), padding left out."""
    lines = ["Scenarist_SCC V1.0", ""]
    run: list[str] = []
    first = 0
    for i, (b1, b2) in enumerate([*pairs, PAD]):
        if (b1, b2) == PAD or not ((b1 & 0x7F) or (b2 & 0x7F)):
            if run:
                lines += [f"{ndf_label(start + first)}\t{' '.join(run)}", ""]
                run = []
            continue
        if not run:
            first = i
        run.append(f"{b1:02x}{b2:02x}")
    return "\n".join(lines) + "\n"


def frame_pairs(path: Path, stream: int | None = None) -> list[list[tuple[int, int, int]]]:
    """Per displayed frame of the video stream: its 608 (field, byte1, byte2) triplets."""
    import av

    with av.open(str(path)) as container:
        v = container.streams.video[0]
        if stream is not None:
            v = next(s for s in container.streams.video if s.index == stream)
        v.thread_type = "AUTO"
        out: list[list[tuple[int, int, int]]] = []
        for frame in container.decode(v):
            cc = frame.side_data.get("A53_CC") if frame.side_data else None
            out.append(list(a53_pairs(bytes(cc))) if cc is not None else [])  # type: ignore[call-overload]
    return out


def channels_present(frames: list[list[tuple[int, int, int]]]) -> list[int]:
    """The caption channels (1..4) that carry any data."""
    return [ch for ch in (1, 2, 3, 4) if has_data(pick_channel(frames, ch))]


def pick_channel(frames: list[list[tuple[int, int, int]]], channel: int) -> list[tuple[int, int]]:
    """One channel's byte pairs, one per frame, from ``frame_pairs``' triplets."""
    f = field_of(channel)
    return channel_pairs([[(b1, b2) for fld, b1, b2 in fr if fld == f] for fr in frames], channel)

"""What the ``imf`` deliverable's actions do: picture and audio track files from restoro's
working frames and WAVs, and the package documents that reference them."""

from __future__ import annotations

import uuid
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from restoro.deliver.imf import ul as U
from restoro.deliver.imf.package import NAMESPACE, PackageSpec, write_package
from restoro.deliver.imf.packing import sha1_b64
from restoro.errors import MediaError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from restoro.media.frames import FrameFormat

LAYOUT_BY_CHANNELS = {2: "stereo", 6: "5.1", 8: "7.1"}


def picture_track(
    frames: Path,
    fmt: FrameFormat,
    *,
    application: str,
    raster: tuple[int, int],
    fit: str,
    reversible: bool,
    profile: str,
    issued: str,
    out: Path,
    work: Path,
) -> int:
    """Encode a shot's frames and frame-wrap them; the track file UUID hashes the essence."""
    work.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fmt.frame_rate)
    if application == "prores":
        from restoro.deliver.imf.prores_track import write_prores_track
        from restoro.deliver.prores import encode_chunk

        mov = work / "shot.mov"
        encode_chunk(frames, fmt, raster=raster, fit=fit, profile=profile, out=mov)  # type: ignore[arg-type]
        tid = uuid.uuid5(NAMESPACE, f"prores:{sha1_b64(mov)}:{issued}")
        return write_prores_track(mov, out, tid, rate, raster=raster, profile=profile,
                                  issued=issued)  # fmt: skip
    from restoro.deliver.imf.j2k import encode_shot
    from restoro.deliver.imf.tracks import write_j2k_track

    shot = work / "shot.rj2k"
    encode_shot(frames, fmt, raster=raster, fit=fit, reversible=reversible, out=shot)
    tid = uuid.uuid5(NAMESPACE, f"j2k:{sha1_b64(shot)}:{fmt.frame_rate}:{issued}")
    return write_j2k_track([shot], out, tid, rate, issued=issued)


def audio_track(
    wav: Path, out: Path, *, layout: str | None, language: str, title: str, issued: str
) -> int:
    """Clip-wrap a 24-bit 48 kHz WAV with MCA labels for its layout (stereo or 5.1)."""
    from restoro.deliver.imf.tracks import wav_info, write_pcm_track

    channels = wav_info(wav)[0]
    layout = layout or LAYOUT_BY_CHANNELS.get(channels)
    if layout not in U.LAYOUT_CHANNELS or len(U.LAYOUT_CHANNELS[layout]) != channels:
        raise MediaError(
            f"IMF audio: no MCA labelling for {channels} channels as {layout!r}",
            hint="declare the track's layout as stereo, 5.1 or 7.1 (MCA labels for mono are not "
            "in the dictionary restoro carries)",
        )
    tid = uuid.uuid5(NAMESPACE, f"pcm:{sha1_b64(wav)}:{layout}:{language}:{title}:{issued}")
    return write_pcm_track(wav, out, tid, layout=layout, language=language, title=title,
                           issued=issued)  # fmt: skip


def package_documents(
    pictures: list[Path],
    audios: list[Path],
    work: Path,
    *,
    params: Mapping[str, Any],
    texts: list[Path] | None = None,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write CPL/OPL/PKL/ASSETMAP for the given track files (blobs, linked in under their
    package names); return the documents and the names/track list for ``materialise``."""
    from restoro.deliver.imf.cpl import APP_2E, APP_PRORES
    from restoro.deliver.imf.reader import read_track_file

    work.mkdir(parents=True, exist_ok=True)
    previous = set(params.get("previous", []))
    linked: list[Path] = []
    tracks: list[tuple[Path, str]] = []
    texts = texts or []
    for kind, blobs in (("VIDEO", pictures), ("AUDIO", audios), ("TEXT", texts)):
        for blob in blobs:
            tf = read_track_file(blob)
            name = f"{kind}_{tf.id}.mxf"
            dst = work / name
            if not dst.exists():
                dst.symlink_to(blob)
            linked.append(dst)
            if str(tf.id) not in previous:
                tracks.append((blob, name))
    n, m = len(pictures), len(pictures) + len(audios)
    seq_kinds = params.get("text_sequences", [])
    d = params["disclosure"]
    spec = PackageSpec(
        title=params["title"],
        edit_rate=Fraction(params["frame_rate"]),
        application=APP_PRORES if params["application"] == "prores" else APP_2E,
        issued=params["issued"],
        picture=linked[:n],
        audio=linked[n:m],
        text=list(zip(linked[m:], seq_kinds, strict=True)),
        external={p for p in linked if p.name.split("_", 1)[1][:-4] in previous},
        timecode=params["timecode"],
        drop_frame=params.get("drop_frame", False),
        content_version=f"{params['title']} restoration ({d['summary']})",
        disclosure=d,
    )
    pkg = write_package(spec, work)
    docs = {"cpl": pkg.cpl, "opl": pkg.opl, "pkl": pkg.pkl, "assetmap": pkg.assetmap}
    names = {k: v.name for k, v in docs.items()}
    return docs, {"names": names, "tracks": [(str(b), n) for b, n in tracks]}

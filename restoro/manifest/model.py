"""Manifest v1: the pydantic models of ``restoro.yaml`` (the user-facing contract).

Every model refuses unknown keys and validates strictly (``"yes"`` is not a bool, ``"12"`` is not
an int), because a manifest that silently means something else is worse than one that fails.
Each field's ``description`` is exported into ``schemas/restoro.schema.json`` for editors.
Cross-references (a title naming a source, stage params, ...) are checked in ``validate``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from restoro.manifest.fields import (
    Aspect,
    AsText,
    Bitrate,
    Digest,
    FrameRate,
    Language,
    Name,
    Position,
    Range,
    Raster,
    ShotId,
    Slug,
    Smpte,
    StageParamsMap,
    fail,
)

MAX_OFFSET_MS = 86_400_000
"""Largest sync offset (24 hours), either way."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- sources -------------------------------------------------------------------------------------


class Source(_Model):
    """A media file the titles draw from."""

    path: str = Field(description="Path to the media file, relative to the manifest.")
    digest: Digest | None = Field(
        None, description='Optional pin "xxh128:<32 hex>"; the build fails if the file differs.'
    )
    title: int | None = Field(
        None,
        ge=1,
        le=99,
        description="When path is a DVD-Video disc (a folder holding VIDEO_TS, VIDEO_TS "
        "itself, or an .iso): the title to read; default the longest.",
    )
    chapters: (
        Annotated[list[Annotated[int, Field(ge=1, le=99)]], Field(min_length=2, max_length=2)]
        | None
    ) = Field(None, description="DVD-Video disc: [first, last] chapters of the title to read.")
    angle: int | None = Field(
        None,
        ge=1,
        le=9,
        description="DVD-Video disc: the camera angle of a multi-angle title (default 1).",
    )

    @model_validator(mode="after")
    def _chapter_order(self) -> Source:
        if self.chapters is not None and self.chapters[0] > self.chapters[1]:
            raise fail("source", "chapters: [first, last] needs first <= last")
        return self

    field_order: Literal["auto", "progressive", "tff", "bff"] = Field(
        "auto", description="Field order of the video; auto: from the stream and analysis."
    )
    cadence: Literal["auto", "film", "video", "mixed"] = Field(
        "auto",
        description="film: 3:2-pulldown film (inverse telecine); video: true interlaced; "
        "mixed: decided per segment; auto: detected.",
    )
    aspect: Aspect | None = Field(
        None, description='Display aspect ratio, e.g. "4:3"; default: from the stream.'
    )
    color: Literal["auto", "bt601-525", "bt601-625", "bt709"] = Field(
        "auto", description="Colour encoding of the source; auto: from the stream tags and size."
    )
    crop: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=4, max_length=4)] = Field(
        default_factory=lambda: [0, 0, 0, 0],
        description="Pixels to remove [left, top, right, bottom] (overscan), in source pixels.",
    )
    timecode: Smpte = Field(
        "00:00:00:00",
        description="Timecode of the first frame; ';' before the frames means drop-frame.",
    )


# -- pipelines -----------------------------------------------------------------------------------


class StageEntry(_Model):
    """One stage of a pipeline: ``{stage: ID, cache: bool, ...params}``.

    The keys other than ``stage`` and ``cache`` are the stage's params; they are kept in
    ``params`` and validated against the stage's ``Params`` model in ``validate``.
    """

    stage: str = Field(description="Stage id, e.g. ingest or upscale.")
    cache: bool = Field(
        False,
        description="Materialise a lossless per-shot intermediate after this stage (cache "
        "points also follow ingest and every GPU stage).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The stage's params, written inline beside stage."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_params(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixed = {k: data[k] for k in ("stage", "cache") if k in data}
            fixed["params"] = {k: v for k, v in data.items() if k not in ("stage", "cache")}
            return fixed
        return data

    @model_serializer(mode="wrap")
    def _inline_params(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        params = out.pop("params", {})
        return {**params, **out}


# -- titles --------------------------------------------------------------------------------------


class ShotsConfig(_Model):
    """How a title is cut into shots."""

    detector: Literal["content", "adaptive", "threshold", "none"] = Field(
        "content",
        description="PySceneDetect detector; none: one shot per title plus the forced cuts.",
    )
    threshold: float = Field(27.0, gt=0, description="Detector threshold.")
    min_frames: int = Field(12, ge=1, description="Minimum shot length in frames.")
    cuts: list[Position] = Field(
        default_factory=list, description="Positions where a cut is forced (first frame of a shot)."
    )
    joins: list[Position] = Field(
        default_factory=list,
        description="Positions of detected cuts to ignore (the first frame of the shot to join "
        "onto the previous one).",
    )


class Override(_Model):
    """Per-range or per-shot changes; later overrides win."""

    range: Range | None = Field(
        None, description="Select the shots inside [start, end) (title source timecode)."
    )
    shots: Annotated[list[ShotId], Field(min_length=1)] | None = Field(
        None, description="Select shots by id (<title>@<timecode of the first frame>)."
    )
    tags: list[str] = Field(default_factory=list, description="Labels added to the shots.")
    pipeline: str | None = Field(None, description="Use this pipeline instead of the title's.")
    params: StageParamsMap = Field(
        default_factory=dict,
        description="Params by stage id, merged into that stage of the chain (keys replace keys).",
    )
    source: str | None = Field(
        None, description="Conform: take these shots' frames from another source."
    )
    source_in: Position | None = Field(
        None,
        description="Conform: position in `source` (its own timecode) of the range's first "
        "frame; default: the same timecode as in the title's source.",
    )

    @model_validator(mode="after")
    def _one_selector(self) -> Override:
        if (self.range is None) == (self.shots is None):
            raise fail("override", "an override needs exactly one selector: range: or shots:")
        if self.source_in is not None and (self.source is None or self.range is None):
            raise fail("override", "source_in needs source: and a range: selector")
        return self


class AudioTrack(_Model):
    """An audio track of the title."""

    source: str | None = Field(None, description="Source name; default: the title's source.")
    stream: int | None = Field(
        None,
        ge=0,
        description="Stream index in the container (as ffmpeg/PyAV number streams); default: "
        "the source's audio stream in `language`, else its first audio stream.",
    )
    layout: Annotated[
        Literal["mono", "stereo", "2.1", "3.0", "4.0", "quad", "5.0", "5.1", "6.1", "7.1"],
        AsText,
    ] = Field("stereo", description="Channel layout of the track.")
    language: Language = Field(
        "und",
        description="Language, a BCP 47 tag (en, fr-CA); without `stream`, picks the source's "
        "audio stream tagged with this language.",
    )
    loudness: float | None = Field(
        None, ge=-70, le=0, description="Integrated loudness target in LUFS; none: unchanged."
    )
    offset_ms: int = Field(
        0,
        ge=-MAX_OFFSET_MS,
        le=MAX_OFFSET_MS,
        description="Sync offset; positive delays the audio.",
    )
    true_peak: float = Field(
        -1.0, ge=-20, le=0, description="True-peak ceiling in dBTP when normalising to loudness."
    )
    stems: Annotated[list[str], Field(min_length=2)] | None = Field(
        None,
        description="Assemble the track from mono audio files (paths relative to the manifest), "
        "one per channel of layout in its order (5.1: FL FR FC LFE BL BR); replaces "
        "source/stream.",
    )


class CaptionTrack(_Model):
    """A caption or subtitle file of the title."""

    path: str = Field(
        "", description="Caption file (SCC, SRT, WebVTT, TTML/IMSC), relative; or source:."
    )
    source: str | None = Field(
        None,
        description="Instead of path: the closed captions (CEA-608) embedded in this source's "
        "video (kind: cc).",
    )
    channel: int | None = Field(
        None, ge=1, le=4, description="With source: the caption channel CC1..CC4 (default 1)."
    )
    language: Language = Field("en", description="Language, a BCP 47 tag.")
    kind: Literal["cc", "subtitles", "sdh"] = Field("cc", description="Caption kind.")
    offset_ms: int = Field(
        0,
        ge=-MAX_OFFSET_MS,
        le=MAX_OFFSET_MS,
        description="Sync offset; positive delays the captions.",
    )

    @model_validator(mode="after")
    def _path_or_source(self) -> CaptionTrack:
        if bool(self.path) == (self.source is not None):
            raise fail("caption", "a caption track needs exactly one of path: or source:")
        if self.channel is not None and self.source is None:
            raise fail("caption", "channel: picks a channel of embedded captions (source:)")
        return self


class Title(_Model):
    """A programme (episode, feature) cut from one source."""

    source: str = Field(description="Name of the source the title is cut from.")
    pipeline: str = Field(description="Name of the pipeline every shot runs by default.")
    range: Range | None = Field(
        None, description="Trim [start, end) in source timecode; default: the whole source."
    )
    shots: ShotsConfig = Field(
        default_factory=lambda: ShotsConfig.model_validate({}), description="Shot detection."
    )
    overrides: list[Override] = Field(
        default_factory=list, description="Per-range/per-shot changes, applied in order."
    )
    audio: list[AudioTrack] = Field(default_factory=list, description="Audio tracks.")
    captions: list[CaptionTrack] = Field(default_factory=list, description="Caption tracks.")
    frame_rate: FrameRate | None = Field(
        None, description="Frame rate after ingest, e.g. 24000/1001 after IVTC; default: derived."
    )


# -- variants and deliverables -------------------------------------------------------------------


class Variant(_Model):
    """An alternative version of every title (e.g. a safe review version)."""

    params: StageParamsMap = Field(
        default_factory=dict, description="Params by stage id, applied after all overrides."
    )
    description: str | None = Field(None, description="What this variant is for.")


# Review and approval (docs/review.md, "Approved masters"): on every deliverable kind.
SelectField = Annotated[
    Literal["approved"] | None,
    Field(
        description="approved: assemble each shot from the variant its approval in "
        "restoro.review.yaml names (an unapproved shot is an error, or uses fallback)."
    ),
]
FallbackField = Annotated[
    Name | None,
    Field(
        description="With select: the variant (or base, the build without --variant) an "
        "unapproved shot uses."
    ),
]
RequireApprovalField = Annotated[
    bool,
    Field(
        description="Refuse to build this deliverable while a shot of its titles is "
        "unreviewed, rejected or needs review."
    ),
]


class ProresDeliverable(_Model):
    """A ProRes MOV mezzanine master per title."""

    kind: Literal["prores"] = Field(description="Deliverable kind.")
    profile: Annotated[Literal["422hq", "4444", "4444xq"], AsText] = Field(
        "422hq", description="ProRes profile."
    )
    raster: Raster = Field(description="Output raster WIDTHxHEIGHT (even numbers).")
    fit: Literal["pillarbox", "letterbox", "fit"] = Field(
        "pillarbox",
        description="pillarbox/letterbox: keep the aspect ratio with bars; fit: fill the raster.",
    )
    frame_rate: FrameRate | None = Field(None, description="Output frame rate; default: title's.")
    titles: list[str] | None = Field(None, description="Titles to deliver; default: all.")
    select: SelectField = None
    fallback: FallbackField = None
    require_approval: RequireApprovalField = False


class ImfDeliverable(_Model):
    """An IMF package (App 2E or App ProRes)."""

    kind: Literal["imf"] = Field(description="Deliverable kind.")
    application: Annotated[Literal["2e", "prores"], AsText] = Field(
        "2e", description="IMF application: 2e (JPEG 2000) or prores (RDD 45)."
    )
    raster: Raster = Field(description="Output raster WIDTHxHEIGHT (even numbers).")
    titles: list[str] | None = Field(None, description="Titles to deliver; default: all.")
    fit: Literal["pillarbox", "letterbox", "fit"] = Field(
        "pillarbox",
        description="pillarbox/letterbox: keep the aspect ratio with bars; fit: fill the raster.",
    )
    reversible: bool = Field(
        False, description="App 2E: lossless (5-3 reversible) JPEG 2000 instead of 9-7."
    )
    profile: Annotated[Literal["422hq", "4444", "4444xq"], AsText] = Field(
        "422hq", description="App ProRes: ProRes profile of the picture track files."
    )
    issue_date: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
        description="IssueDate of the CPL/PKL/ASSETMAP (UTC, YYYY-MM-DDTHH:MM:SSZ); "
        "default: a fixed date, so identical inputs give identical packages.",
    )
    supplemental_to: str | None = Field(
        None,
        description="Output folder of an earlier imf deliverable (relative to the manifest, "
        "one package per title inside): build supplemental packages that reference its "
        "unchanged track files instead of carrying them.",
    )
    select: SelectField = None
    fallback: FallbackField = None
    require_approval: RequireApprovalField = False


class Rendition(_Model):
    """One video rendition of a streaming ladder."""

    codec: Literal["hevc", "h264", "av1"] = Field(description="Video codec.")
    height: int = Field(
        gt=0, le=8192, description="Picture height in lines; width follows the aspect."
    )
    bitrate: Bitrate = Field(description="Target bitrate, e.g. 16M or 800k.")
    bit_depth: Literal[8, 10] = Field(8, description="Bit depth.")
    crf: int | None = Field(None, ge=0, le=63, description="Constant quality; caps bitrate.")


class AudioRendition(_Model):
    """One audio rendition of a streaming package."""

    codec: Literal["aac", "eac3", "ac3"] = Field(description="Audio codec.")
    channels: int = Field(ge=1, le=8, description="Channel count.")
    bitrate: Bitrate = Field(description="Bitrate, e.g. 160k.")
    track: int = Field(0, ge=0, description="Index of the title's audio track it encodes.")
    passthrough: bool = Field(
        False,
        description="Carry the source's AC-3 or E-AC-3 stream untouched (no re-encode), cut "
        "to the title on audio frame boundaries; codec, channels and bitrate then come from the "
        "stream.",
    )


class StreamingDeliverable(_Model):
    """An HLS or DASH package with a bitrate ladder."""

    kind: Literal["hls", "dash"] = Field(description="Deliverable kind.")
    ladder: Annotated[list[Rendition], Field(min_length=1)] = Field(description="Video renditions.")
    audio: list[AudioRendition] = Field(default_factory=list, description="Audio renditions.")
    titles: list[str] | None = Field(None, description="Titles to deliver; default: all.")
    segment_seconds: float = Field(
        4.0, gt=0, le=10, description="Segment cadence: an IDR at least this often (seconds)."
    )
    subtitles: bool = Field(True, description="Include the title's captions as WebVTT.")
    shot_crf: dict[ShotId, Annotated[int, Field(ge=0, le=63)]] = Field(
        default_factory=dict,
        description="CRF for every rendition of these shots (by id), e.g. for a grainy shot; "
        "only those shots re-encode.",
    )
    select: SelectField = None
    fallback: FallbackField = None
    require_approval: RequireApprovalField = False


Deliverable = Annotated[
    ProresDeliverable | ImfDeliverable | StreamingDeliverable, Field(discriminator="kind")
]


class QcConfig(_Model):
    """QC thresholds. With a ``qc:`` section, ``restoro build`` runs QC and fails (exit 1) when
    a finding is an error; an unset threshold uses the check's default (see docs/qc.md)."""

    fidelity_min_psnr: float | None = Field(
        None,
        description="Minimum PSNR (dB) of the output scaled back to source size, per shot "
        "(unset: 25).",
    )
    max_flicker: float | None = Field(
        None,
        ge=0,
        description="Maximum temporal flicker of a shot beyond the source's own, in 8-bit "
        "levels (unset: 2.0).",
    )
    loudness_tolerance: float | None = Field(
        None, ge=0, description="Allowed deviation from the loudness target, in LU (unset: 1)."
    )
    max_black_frames: int | None = Field(
        None,
        ge=0,
        description="More black frames in a shot than this fail the build (unset: reported only).",
    )
    max_frozen_frames: int | None = Field(
        None,
        ge=0,
        description="More frozen (repeated) frames in a shot than this fail the build "
        "(unset: reported only).",
    )
    fail_on_combing: bool | None = Field(
        None, description="A shot with combing left after ingest fails the build (unset: no)."
    )
    min_vmaf: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Minimum mean VMAF of each HLS/DASH video rendition against the title's "
        "ProRes master (when the manifest builds one); a lower rendition fails the build "
        "(unset: reported only).",
    )
    fail_on_captions: bool | None = Field(
        None,
        description="Caption check findings (overlaps, reading rate, line length and count, "
        "duration, gaps) fail the build (unset: reported as warnings).",
    )
    skip: list[
        Literal[
            "fidelity", "black", "frozen", "combing", "flicker", "banding", "blockiness",
            "deliverable", "vmaf", "captions",
        ]
    ] = Field(default_factory=list, description="Checks not to run.")  # fmt: skip


class Manifest(_Model):
    """A restoration project: sources, pipelines, titles, variants, deliverables, QC."""

    model_config = ConfigDict(title="restoro manifest")

    restoro: Literal[1] = Field(description="Manifest schema version; this restoro reads 1.")
    project: Slug = Field(description="Project name (a slug: letters, digits, '.', '_', '-').")
    output: str = Field("out", description="Where deliverables go, relative to the manifest.")
    intermediates: Literal["auto", "lossless"] = Field(
        "auto",
        description="How cache points are stored. auto: 16-bit lossless FFVHuff, except after a "
        "model, where a ProRes 4444 mezzanine (10-bit 4:4:4; ~3.8 MB a 4K-class frame against "
        "~30 lossless) keeps a season's store in bounds; lossless: 16-bit FFVHuff everywhere.",
    )
    sources: dict[Name, Source] = Field(default_factory=dict, description="Media by name.")
    pipelines: dict[Name, list[StageEntry]] = Field(
        default_factory=dict, description="Named stage chains; each starts with ingest."
    )
    titles: dict[Name, Title] = Field(default_factory=dict, description="Titles by name.")
    variants: dict[Name, Variant] = Field(default_factory=dict, description="Variants by name.")
    deliverables: dict[Name, Deliverable] = Field(
        default_factory=dict, description="Deliverables by name."
    )
    qc: QcConfig = Field(
        default_factory=lambda: QcConfig.model_validate({}), description="QC thresholds."
    )

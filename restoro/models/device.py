"""The execution device class of model inference, as it enters action keys.

CPU and CUDA (and one GPU model and another, or one torch and another) give slightly different
pixels from the same model, so a chain that runs a model keys on where it runs:
``cpu, torch 2.5.1`` or ``cuda:NVIDIA H100 80GB HBM3, torch 2.5.1``. Switching ``--device``
reruns the model actions (reason ``tool-changed``); chains without a model never see this, and
torch is imported only when a model stage is planned.
"""

from __future__ import annotations

import threading

_CACHE: dict[str, str] = {}
_LOCK = threading.Lock()


def resolve(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a CUDA device, else ``cpu``; others unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def fingerprint(device: str) -> str:
    """The device class for ``--device`` (auto, cpu, cuda, cuda:N), cached per process."""
    with _LOCK:
        if device in _CACHE:
            return _CACHE[device]
    import torch

    where = resolve(device)
    if where.startswith("cuda") and torch.cuda.is_available():
        index = int(where.split(":", 1)[1]) if ":" in where else torch.cuda.current_device()
        where = f"cuda:{torch.cuda.get_device_name(index)}"
    fp = f"{where}, torch {torch.__version__}"
    with _LOCK:
        _CACHE[device] = fp
    return fp


def reset() -> None:
    with _LOCK:
        _CACHE.clear()

"""Model references in a manifest: a built-in name or a file path relative to the manifest.

``pin(ref, scale, env)`` puts the model's bytes in the store and returns their digest, so the
digest (never the path or the name) enters the action key: editing a model file reruns exactly
the shots that use it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from restoro.errors import InputError

SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt")


def is_file_ref(ref: str) -> bool:
    return ref.lower().endswith(SUFFIXES) or "/" in ref


def check_ref(ref: str, scale: int, *, stage: str) -> None:
    """Refuse names that are neither a built-in nor a model file path (no torch needed)."""
    from restoro.models import builtin

    if builtin.is_builtin_name(ref):
        b = builtin.resolve(ref, scale)
        if b is not None and b.scale != scale:
            raise InputError(
                f"{stage}: model {ref!r} is x{b.scale} but the manifest asks for scale {scale}",
                hint=f"set scale: {b.scale}, or pick a model made for x{scale}",
            )
        return
    if not is_file_ref(ref):
        names = ", ".join(sorted(builtin.BUILTINS) + sorted(builtin.FAMILIES))
        raise InputError(
            f"{stage}: unknown model {ref!r}",
            hint=f"use a built-in ({names}) or a path to a {'/'.join(SUFFIXES)} file",
        )


def pin(ref: str, scale: int | None, env: Any, *, stage: str) -> str:
    """Store the model's bytes in the CAS; return their digest. Checks the model's scale."""
    from restoro.models import builtin

    store = env.store
    if builtin.is_builtin_name(ref):
        b = builtin.resolve(ref, scale or 1)
        assert b is not None
        check_ref(ref, scale or b.scale, stage=stage)
        return builtin.ensure_stored(store, b)
    path = model_path(ref, env.root, stage=stage)
    digest = store.state.file_digest(path)
    if not store.has_blob(digest):
        tmp = store.temp_path(".model")
        shutil.copyfile(path, tmp)
        digest = store.put_file(tmp).digest
    # The manifest's file (same bytes): errors name it, not a store blob.
    check_model_file(ref, path, digest, scale, stage=stage)
    return digest


def model_path(ref: str, root: Path | str, *, stage: str) -> Path:
    """The file a model path names (relative to the manifest's directory); it must exist."""
    path = (Path(root) / ref).resolve()
    if not path.is_file():
        raise InputError(
            f"{stage}: model file {ref} does not exist"
            + (" (it is a directory)" if path.is_dir() else f" (looked in {path.parent})"),
            hint="paths are relative to the manifest's directory",
        )
    return path


def check_model_file(
    ref: str, path: Path, digest: str | None, scale: int | None, *, stage: str
) -> None:
    """The model file ``path`` (named ``ref`` in the manifest, content ``digest``: its facts are
    cached under it) loads (torch, spandrel) and has the asked ``scale``. Errors name ``ref``."""
    from restoro.models.loader import info_for

    try:
        info = info_for(path, digest)
    except InputError as exc:
        raise InputError(f"{stage}: {exc.message.replace(str(path), ref)}", hint=exc.hint) from None
    if scale is not None and info.scale != scale:
        raise InputError(
            f"{stage}: {ref} is a x{info.scale} {info.architecture} model but the manifest "
            f"asks for scale {scale}",
            hint=f"set scale: {info.scale} (use final: WxH for another output size)",
        )

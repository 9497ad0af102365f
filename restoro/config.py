"""Site and project settings for the CLI: ``restoro.toml`` beside the manifest, and the user's
``~/.config/restoro/config.toml``.

Both files have the same shape (``[build]`` and ``[ray]`` tables); the project's values override
the user's, and command-line flags override both. They choose how and where a build runs (the
executor, the store, the cluster), never what it computes: nothing here enters an action key.
An unknown or mistyped key is a ``UsageError`` (exit 2) naming the file and the key.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from restoro.errors import UsageError

PROJECT_FILE = "restoro.toml"


class BuildSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    executor: str | None = None
    """One of the executors listed in ``restoro/plan/executors.py``."""
    jobs: int | None = Field(default=None, ge=1)
    device: str | None = Field(default=None, pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    store: str | None = None
    """A path (relative to the file that sets it) or a ``file://`` / ``s3://`` URL."""

    @field_validator("executor")
    @classmethod
    def _listed(cls, name: str | None) -> str | None:
        from restoro.plan.executors import choices, names

        if name is not None and name not in names():
            raise PydanticCustomError("literal_error", "Input should be {e}", {"e": choices()})
        return name


class RaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = None
    resources: dict[str, float] | None = None
    batch_size: int | None = Field(default=None, ge=0)
    retries: int | None = Field(default=None, ge=0)


class Config(BaseModel):
    """One config file, or several merged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    build: BuildSettings = Field(default_factory=BuildSettings)
    ray: RaySettings = Field(default_factory=RaySettings)


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/restoro/config.toml`` (``~/.config/…`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "restoro" / "config.toml"


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _suggest(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The closest known key to the unknown one at ``loc``, for a did-you-mean hint."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    hits = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return _where((*loc[:-1], hits[0])) if hits else None


def load_file(path: Path) -> Config:
    """Parse one config file; UsageError (naming the file and the key) when it is invalid."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UsageError(
            f"not valid TOML: {e}", hint="see docs/farm.md for the format", location=str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the config file {path}: {e}") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = _where(err["loc"])
        if err["type"] == "extra_forbidden":
            near = _suggest(Config, err["loc"])
            raise UsageError(
                f"unknown key {key!r}",
                location=str(path),
                hint=(f"did you mean {near!r}? " if near else "")
                + "known keys: "
                + ", ".join(
                    f"{section}.{name}"
                    for section, sub in (("build", BuildSettings), ("ray", RaySettings))
                    for name in sub.model_fields
                ),
            ) from None
        raise UsageError(
            f"{key}: {err['msg']} (got {err.get('input')!r})",
            hint="see docs/farm.md for the keys and their types",
            location=str(path),
        ) from None
    store = cfg.build.store
    if store and "://" not in store:  # a path: relative to the file that sets it
        full = (path.parent / Path(store).expanduser()).resolve()
        cfg = cfg.model_copy(update={"build": cfg.build.model_copy(update={"store": str(full)})})
    return cfg


def _merge(low: Config, high: Config) -> Config:
    """``high``'s values where it sets them, else ``low``'s (per key)."""
    sections = {}
    for name in ("build", "ray"):
        a, b = getattr(low, name), getattr(high, name)
        sections[name] = a.model_copy(update=b.model_dump(exclude_none=True))
    return Config(**sections)


def load_config(manifest: Path, *, user: Path | None = None) -> Config:
    """The user's config, overridden by the project's ``restoro.toml`` beside ``manifest``."""
    cfg = Config()
    for path in (user or user_config_path(), Path(manifest).parent / PROJECT_FILE):
        if path.is_file():
            cfg = _merge(cfg, load_file(path))
    return cfg


@dataclass(frozen=True)
class Settings:
    """How a command runs: flags, else the project's config, else the user's, else defaults."""

    executor: str = "local"
    jobs: int = 2
    device: str = "auto"
    store: str | None = None
    ray_address: str | None = None
    ray_resources: dict[str, float] | None = None
    batch_size: int = 0
    retries: int = 2


def settings(
    manifest: Path,
    *,
    executor: str | None = None,
    jobs: int | None = None,
    device: str | None = None,
    store: str | None = None,
    ray_address: str | None = None,
    ray_resources: dict[str, float] | None = None,
) -> Settings:
    """Merge the command line (None: not given) over the config files of ``manifest``."""
    cfg = load_config(manifest)
    b, r, d = cfg.build, cfg.ray, Settings()

    def pick(flag: Any, conf: Any, default: Any) -> Any:
        return flag if flag is not None else conf if conf is not None else default

    return Settings(
        executor=pick(executor, b.executor, d.executor),
        jobs=pick(jobs, b.jobs, d.jobs),
        device=pick(device, b.device, d.device),
        store=pick(store, b.store, d.store),
        ray_address=pick(ray_address, r.address, d.ray_address),
        ray_resources=pick(ray_resources, r.resources, d.ray_resources),
        batch_size=pick(None, r.batch_size, d.batch_size),
        retries=pick(None, r.retries, d.retries),
    )

"""Project and user config files (restoro.toml, ~/.config/restoro/config.toml) for the CLI."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest
from buildkit import cli, json_lines
from conftest import SMALL_MANIFEST

from restoro.config import load_config, settings
from restoro.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated user config directory (``$XDG_CONFIG_HOME/restoro``)."""
    base = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base))
    (base / "restoro").mkdir(parents=True)
    return base / "restoro"


def _manifest(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    manifest = project / "restoro.yaml"
    manifest.write_text(SMALL_MANIFEST, encoding="utf-8")
    return manifest


def test_project_overrides_user_and_flags_override_both(tmp_path: Path, home: Path) -> None:
    manifest = _manifest(tmp_path)
    (home / "config.toml").write_text(
        '[build]\nexecutor = "ray"\njobs = 4\ndevice = "cpu"\n'
        '[ray]\naddress = "10.0.0.5:6379"\nresources = { gpu_a = 1 }\nretries = 5\n'
    )
    (manifest.parent / "restoro.toml").write_text(
        '[build]\njobs = 8\nstore = "../farm-store"\n[ray]\nbatch_size = 4\n'
    )
    s = settings(manifest)
    assert (s.executor, s.jobs, s.device) == ("ray", 8, "cpu")  # jobs: the project's
    assert s.store == str((tmp_path / "farm-store").resolve())  # relative to restoro.toml
    assert (s.ray_address, s.ray_resources) == ("10.0.0.5:6379", {"gpu_a": 1.0})
    assert (s.batch_size, s.retries) == (4, 5)
    s = settings(manifest, jobs=1, executor="local", ray_resources={"farm": 2.0}, store="/x")
    assert (s.executor, s.jobs, s.ray_resources, s.store) == ("local", 1, {"farm": 2.0}, "/x")
    # Without files: the built-in defaults.
    (home / "config.toml").unlink()
    (manifest.parent / "restoro.toml").unlink()
    s = settings(manifest)
    assert (s.executor, s.jobs, s.device, s.store, s.ray_address) == (
        "local",
        2,
        "auto",
        None,
        None,
    )


def test_urls_are_kept_and_user_paths_expand(tmp_path: Path, home: Path) -> None:
    manifest = _manifest(tmp_path)
    (home / "config.toml").write_text('[build]\nstore = "s3://bucket/prefix"\n')
    assert load_config(manifest).build.store == "s3://bucket/prefix"
    (home / "config.toml").write_text('[build]\nstore = "stores/main"\n')
    assert load_config(manifest).build.store == str((home / "stores" / "main").resolve())


@pytest.mark.parametrize(
    ("text", "key", "near"),
    [
        ("[build]\njbos = 8\n", "build.jbos", "build.jobs"),
        ("[ray]\nadress = 'h:1'\n", "ray.adress", "ray.address"),
        ("[biuld]\njobs = 8\n", "biuld", "build"),
        ("[build]\nfrobnicate = 1\n", "build.frobnicate", None),
    ],
)
def test_unknown_key_names_file_and_key(
    tmp_path: Path, home: Path, text: str, key: str, near: str | None
) -> None:
    manifest = _manifest(tmp_path)
    path = manifest.parent / "restoro.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(manifest)
    e = err.value
    assert e.exit_code == 2 and e.location == str(path)
    assert e.message == f"unknown key {key!r}"
    assert e.hint is not None and "build.jobs" in e.hint  # the known keys are listed
    if near:
        assert e.hint.startswith(f"did you mean {near!r}?")
    else:
        assert "did you mean" not in e.hint


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[build]\njobs = 'many'\n", "build.jobs: Input should be a valid integer"),
        ("[build]\njobs = 0\n", "build.jobs: Input should be greater than or equal to 1"),
        ("[build]\nexecutor = 'slurm'\n", "build.executor: Input should be 'local' or 'ray'"),
        ("[build]\ndevice = 'gpu'\n", "build.device: String should match pattern"),
        ("[ray]\nresources = { a100 = 'one' }\n", "ray.resources.a100: Input should be"),
        ("[build\njobs = 1\n", "not valid TOML"),
    ],
)
def test_mistyped_values_are_exit_2(tmp_path: Path, home: Path, text: str, needle: str) -> None:
    manifest = _manifest(tmp_path)
    (home / "config.toml").write_text(text)
    with pytest.raises(UsageError) as err:
        load_config(manifest)
    assert needle in err.value.message
    assert err.value.location == str(home / "config.toml")


@pytest.mark.slow
def test_cli_uses_the_project_config(tmp_path: Path, home: Path, progressive_source: Path) -> None:
    """Through the real CLI: the config's store is where plan, build and status look; a bad
    key fails with exit status 2 before any work, naming the file and the key."""
    manifest = _manifest(tmp_path)
    (manifest.parent / "media").mkdir()
    shutil.copy(progressive_source, manifest.parent / "media" / "source.mkv")
    config = manifest.parent / "restoro.toml"
    config.write_text('[build]\njobs = 3\nstore = "../shared-store"\n')
    env = {"XDG_CONFIG_HOME": str(home.parent)}
    proc = cli("build", "-f", str(manifest), "--json", "--no-qc", env=env)
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    assert events[0]["event"] == "build-start" and events[0]["jobs"] == 3
    shared = tmp_path / "shared-store"
    assert list(shared.glob("ac/*/*.json")) and not (manifest.parent / ".restoro" / "ac").exists()
    # The plan of that same build (--no-qc: its chains are folded into the chunks).
    proc = cli("plan", "-f", str(manifest), "--json", "--no-qc", env=env)
    assert proc.returncode == 0, proc.stderr
    statuses = {e["status"] for e in json_lines(proc.stdout) if e["event"] == "plan"}
    assert statuses == {"cached"}  # found in the configured store
    # --jobs on the command line wins over the file.
    proc = cli("build", "-f", str(manifest), "--json", "--no-qc", "-j", "1", env=env)
    assert proc.returncode == 0 and json_lines(proc.stdout)[0]["jobs"] == 1
    config.write_text("[build]\njbos = 3\n")
    proc = cli("build", "-f", str(manifest), "--json", env=env)
    assert proc.returncode == 2
    assert f"{config}: error[E101]: unknown key 'build.jbos'" in proc.stderr
    assert "did you mean 'build.jobs'?" in proc.stderr
    assert proc.stdout == ""

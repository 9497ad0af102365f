"""The CLI contract: commands, --json output, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import av
from buildkit import cli, json_lines

from restoro.media.ffmpeg import ffmpeg_exe


def test_build_json_ends_with_summary_then_status_and_explain(workspace: Path) -> None:
    res = cli("build", "-f", str(workspace), "--json")
    assert res.returncode == 0, res.stderr
    events = json_lines(res.stdout)
    last = events[-1]
    assert last["event"] == "summary"
    assert (last["executed"], last["cached"], last["failed"]) == (14, 0, 0)
    assert last["outputs"] == {"master": str(workspace.parent / "out" / "master")}

    res = cli("status", "-f", str(workspace), "--json")
    assert res.returncode == 0, res.stderr
    status = json_lines(res.stdout)[-1]
    assert status["up_to_date"] is True and status["cached"] == 14

    res = cli("shots", "ep1", "-f", str(workspace), "--json")
    shots = json_lines(res.stdout)
    assert [s["start"] for s in shots] == [0, 12, 24]

    shot = shots[1]["id"]
    workspace.write_text(workspace.read_text().replace("model: bicubic", "model: lanczos"))
    res = cli("explain", f"{shot}/upscale", "-f", str(workspace), "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json_lines(res.stdout)
    assert row["status"] == "run" and row["reason"] == "params-changed"
    assert any("params.stages" in c and "lanczos" in c for c in row["changes"])


def test_plan_on_a_fresh_workspace_lists_new_actions(workspace: Path) -> None:
    res = cli("plan", "-f", str(workspace), "--json")
    assert res.returncode == 0, res.stderr
    rows = json_lines(res.stdout)
    assert rows[0] == {
        "event": "plan",
        "id": "ep1/analysis",
        "stage": "analysis",
        "status": "run",
        "reason": "new",
        "key": rows[0]["key"],
    }
    assert rows[-1]["event"] == "plan-summary" and rows[-1]["run"] == 1


def test_validate_probe_schema_init(tmp_path: Path, workspace: Path) -> None:
    res = cli("validate", "-f", str(workspace))
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
    res = cli("probe", str(workspace.parent / "media" / "source.mkv"), "--json")
    info = json.loads(res.stdout)
    assert info["video"]["width"] == 160 and info["video"]["frame_count"] == 36
    res = cli("schema", "--stdout")
    assert json.loads(res.stdout)["properties"]["restoro"]
    res = cli("init", str(tmp_path / "new"))
    assert res.returncode == 0 and (tmp_path / "new" / "restoro.yaml").exists()
    res = cli("init", str(tmp_path / "new"))
    assert res.returncode == 2 and "already exists" in res.stderr


def test_missing_manifest_and_bad_option_exit_2(tmp_path: Path) -> None:
    res = cli("build", "-f", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2 and "restoro init" in res.stderr
    res = cli("build", "--jobs", "zero")
    assert res.returncode == 2


def test_cache_ls_verify_gc(workspace: Path) -> None:
    assert cli("build", "-f", str(workspace)).returncode == 0
    res = cli("cache", "ls", "-f", str(workspace), "--json")
    stages = json_lines(res.stdout)[0]["stages"]
    assert stages["chain"]["entries"] == 3
    workspace.write_text(workspace.read_text().replace("model: bicubic", "model: lanczos"))
    assert cli("build", "-f", str(workspace)).returncode == 0
    res = cli("cache", "gc", "-f", str(workspace), "--json")
    assert res.returncode == 0, res.stderr
    res = cli("cache", "ls", "-f", str(workspace), "--json")
    assert json_lines(res.stdout)[0]["stages"]["chain"]["entries"] == 3
    res = cli("build", "-f", str(workspace), "--json")
    assert json_lines(res.stdout)[-1]["executed"] == 0
    assert cli("cache", "verify", "-f", str(workspace)).returncode == 0


def test_master_is_prores_with_pcm_and_timecode(workspace: Path) -> None:
    assert cli("build", "-f", str(workspace)).returncode == 0
    master = workspace.parent / "out" / "master" / "ep1.mov"
    with av.open(str(master)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "prores" and (v.width, v.height) == (640, 360)
        assert v.codec_context.pix_fmt == "yuv422p10le"
        a = c.streams.audio[0]
        assert a.codec_context.name == "pcm_s24le" and a.rate == 48000
        assert any(s.type == "data" for s in c.streams) or "timecode" in str(v.metadata)
    prov = json.loads((master.parent / "ep1.provenance.json").read_text())
    assert prov["ai_processed"] is False and len(prov["shots"]) == 3
    assert prov["shots"][0]["stages"][1]["params"]["model"] == "bicubic"
    assert ffmpeg_exe()


def test_demo_example_is_the_manifest_demo_writes() -> None:
    from restoro.cli.demo import MANIFEST

    example = Path(__file__).resolve().parents[1] / "examples" / "demo" / "restoro.yaml"
    assert example.read_text(encoding="utf-8") == MANIFEST


def test_a_run_naming_one_command_converts_only_that_command(capsys, monkeypatch) -> None:  # noqa: ANN001
    """typer turns each registered command into a click command on every run; a run whose
    first argument names one command gets an app holding only that one, and its help, usage
    and errors read as the whole app's would."""
    import restoro.cli.app as cli_app

    app = cli_app.app
    lean = cli_app._app_for(["build", "-f", "x.yaml"])
    assert lean is not app and len(lean.registered_commands) == 1
    assert lean.registered_groups == []
    assert [g.name for g in cli_app._app_for(["cache", "verify"]).registered_groups] == ["cache"]
    for whole in ([], ["--help"], ["bild"], ["-f", "x"]):
        assert cli_app._app_for(whole) is app
    for args in (["build", "--help"], ["cache", "--help"], ["build", "--no-such-option"]):
        lean_code = cli_app.main(args)
        lean_out = capsys.readouterr()
        with monkeypatch.context() as m:
            m.setattr(cli_app, "_app_for", lambda argv: app)  # the whole app, as before
            whole_code = cli_app.main(args)
        assert (lean_code, lean_out) == (whole_code, capsys.readouterr())
        assert lean_out.out or lean_out.err

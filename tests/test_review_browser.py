"""The review page in headless Chromium (Debian's, driven by Playwright), served by the real
``restoro review`` command on a real build of the two-variant review project: the list's
filters, the wipe view's two videos, approving by keyboard (the YAML file changes), a reload
showing the state, a changed shot showing ``needs review``, and Ctrl-C stopping the server.

With ``RESTORO_DOC_SCREENSHOTS=1`` the run also writes the screenshots in docs/img/.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from buildkit import build
from reviewkit import make_review_project

from restoro import review_file as D
from restoro.plan.workspace import Workspace
from restoro.review.outputs import variant_outputs
from restoro.review_links import shot_path

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

SHOTS = ["ep1@00:00:00:00", "ep1@00:00:00:12", "ep1@00:00:00:24"]
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
SCREENSHOTS = os.environ.get("RESTORO_DOC_SCREENSHOTS") == "1"
READY = "document.body.dataset.ready === '1'"
VIDEOS_READY = """(n) => {
  const vs = Array.from(document.querySelectorAll('#stage video'));
  return vs.length === n && vs.every((v) => v.readyState >= 2 && v.videoWidth === 640 &&
    !v.seeking);
}"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> Path:
    m = make_review_project(tmp_path_factory.mktemp("review-page"), progressive_source)
    build(m, variant="safe", qc=True)
    build(m, variant="clean")
    return m


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``restoro review`` on a free port; its URL and process."""
    code = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"
    args = ["review", "-f", str(project), "--port", "0", "--reviewer", "Tester"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.match(r"review page: (http://127\.0\.0\.1:\d+/)$", line.strip())
    assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
    try:
        yield m.group(1).rstrip("/"), proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


@pytest.fixture(scope="module")
def page(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            browser.close()
    assert not errors, errors


def rows(page: Any) -> list[tuple[str, str]]:
    got = page.eval_on_selector_all(
        "#shots tbody tr", "rs => rs.map(r => [r.dataset.id, r.dataset.status])"
    )
    return [tuple(r) for r in got]


def shot_url(base: str, shot: str) -> str:
    return base + shot_path(shot)


def snap(page: Any, name: str, down_to: str) -> None:
    """A screenshot of the page, from the top down to the element ``down_to``."""
    if SCREENSHOTS:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        box = page.locator(down_to).bounding_box()
        clip = {"x": 0, "y": 0, "width": 1400, "height": min(900, box["y"] + box["height"] + 12)}
        page.screenshot(path=str(DOCS_IMG / name), clip=clip)


def test_list_filters(server: tuple[str, Any], page: Any) -> None:
    base, _proc = server
    page.goto(base + "/")
    page.wait_for_function(READY)
    assert rows(page) == [(s, "unreviewed") for s in SHOTS]
    page.select_option("#filter-tag", "vfx")
    assert rows(page) == [(SHOTS[1], "unreviewed")]
    page.select_option("#filter-tag", "")
    page.select_option("#filter-status", "approved")
    assert rows(page) == [] and page.is_visible("#empty")
    page.select_option("#filter-status", "unreviewed")
    assert len(rows(page)) == 3
    # The filters live in the address: a reload keeps them.
    page.select_option("#filter-tag", "vfx")
    assert "status=unreviewed" in page.url and "tag=vfx" in page.url
    page.reload()
    page.wait_for_function(READY)
    assert page.input_value("#filter-tag") == "vfx" and rows(page) == [(SHOTS[1], "unreviewed")]
    # QC flags and metrics of the cached QC are shown; every thumbnail loads.
    assert page.inner_text("#shots tbody tr .badge") in ("pass", "warn", "fail")
    assert "PSNR" in page.inner_text("#shots tbody tr .metrics")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img.thumb')).every(i => i.naturalWidth === 160)"
    )


def test_wipe_view_loads_both_videos_in_step(server: tuple[str, Any], page: Any) -> None:
    base, _proc = server
    page.goto(shot_url(base, SHOTS[1]))
    page.wait_for_function(READY)
    assert page.inner_text("#shot-id") == SHOTS[1]
    page.wait_for_function(VIDEOS_READY, arg=3)  # side by side: source, safe, clean
    page.keyboard.press("w")
    page.wait_for_function(VIDEOS_READY, arg=2)
    roles = page.eval_on_selector_all("#stage video", "vs => vs.map(v => v.dataset.role)")
    assert roles == ["safe", "clean"]
    decoded = page.eval_on_selector_all(
        "#stage video", "vs => vs.map(v => v.getVideoPlaybackQuality().totalVideoFrames)"
    )
    assert all(n >= 1 for n in decoded), decoded
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert page.inner_text("#frame-no") == "frame 4 / 12"
    page.wait_for_function(VIDEOS_READY, arg=2)
    frames = page.eval_on_selector_all(
        "#stage video", "vs => vs.map(v => Math.floor(v.currentTime * 30000 / 1001))"
    )
    assert frames == [3, 3]  # both videos show the same frame
    # Drag the wipe to a quarter of the picture.
    box = page.locator("#stage .wipe").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.up()
    clip = page.eval_on_selector("#stage .wipe video[data-role=clean]", "v => v.style.clipPath")
    pct = float(re.fullmatch(r"inset\(0(?:px)? 0(?:px)? 0(?:px)? ([\d.]+)%\)", clip).group(1))  # type: ignore[union-attr]
    assert 24 <= pct <= 26, clip
    # Play for a moment and pause: the videos ran together and stop on one frame.
    page.keyboard.press("Home")
    page.keyboard.press(" ")
    page.wait_for_function("document.querySelector('#play').textContent === 'pause'")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('#stage video')).every(v => v.currentTime > 0.1)"
    )
    page.keyboard.press(" ")
    page.wait_for_function(VIDEOS_READY, arg=2)
    frames = page.eval_on_selector_all(
        "#stage video", "vs => vs.map(v => Math.floor(v.currentTime * 30000 / 1001))"
    )
    shown = int(page.inner_text("#frame-no").split()[1]) - 1
    assert frames == [shown, shown], (frames, shown)
    page.keyboard.press("Shift+ArrowRight")
    assert page.inner_text("#frame-no") == "frame 12 / 12"  # clamped at the last frame
    page.keyboard.press("Home")
    page.wait_for_function(VIDEOS_READY, arg=2)
    snap(page, "review-wipe.png", "#decide")
    # 1:1 zoom: each one's full-size frame (320x240 here), not the 640x480 proxy.
    page.keyboard.press("z")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.zoomwin img'))"
        ".every(i => i.complete && i.naturalWidth === 320)"
    )
    assert page.eval_on_selector_all(".zoomwin img", "is => is.length") == 3
    page.keyboard.press("s")


def test_approve_by_keyboard_reload_and_a_changed_shot(
    server: tuple[str, Any], page: Any, project: Path
) -> None:
    base, _proc = server
    review = project.parent / D.REVIEW_FILE
    ws = Workspace(project)
    try:
        clean = {o.shot.id: o.digest for o in variant_outputs(ws, "clean")["ep1"]}
    finally:
        ws.close()
    page.goto(shot_url(base, SHOTS[0]))
    page.wait_for_function(READY)
    page.wait_for_function(VIDEOS_READY, arg=3)
    page.keyboard.press("2")  # approve the second variant, clean; the next shot opens
    page.wait_for_url(shot_url(base, SHOTS[1]))
    doc = yaml.safe_load(review.read_text())
    assert doc["restoro-review"] == 1 and list(doc["shots"]) == [SHOTS[0]]
    e = doc["shots"][SHOTS[0]]
    assert (e["decision"], e["variant"], e["digest"], e["reviewer"]) == (
        "approved",
        "clean",
        clean[SHOTS[0]],
        "Tester",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["time"])
    page.wait_for_function(READY)
    page.keyboard.press("x")  # reject, with a comment
    page.keyboard.type("halo on the face")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#shot-status').textContent === 'rejected'")
    e = yaml.safe_load(review.read_text())["shots"][SHOTS[1]]
    assert (e["decision"], e["comment"], e["reviewer"]) == (
        "rejected",
        "halo on the face",
        "Tester",
    )
    # A reload of the list shows the state from the file.
    page.goto(base + "/")
    page.wait_for_function(READY)
    assert rows(page) == [
        (SHOTS[0], "approved: clean"),
        (SHOTS[1], "rejected"),
        (SHOTS[2], "unreviewed"),
    ]
    page.wait_for_function(
        "Array.from(document.querySelectorAll('img.thumb')).every(i => i.naturalWidth === 160)"
    )
    snap(page, "review-list.png", "#shots")
    page.goto(shot_url(base, SHOTS[0]))
    page.wait_for_function(READY)
    assert page.inner_text("#shot-status") == "approved: clean"
    assert "by Tester" in page.inner_text("#entry")
    # The clean variant changes (its grain), and is rebuilt: its approval needs review again.
    text = project.read_text()
    old, new = "clean: {params: {grain: {amount: 0.3}}}", "clean: {params: {grain: {amount: 0.25}}}"
    assert old in text
    project.write_text(text.replace(old, new))
    build(project, variant="clean")
    page.goto(base + "/")
    page.wait_for_function(READY)
    assert rows(page) == [
        (SHOTS[0], "needs review"),
        (SHOTS[1], "rejected"),  # rejected with safe's digest, and safe did not change
        (SHOTS[2], "unreviewed"),
    ]
    page.select_option("#filter-status", "needs review")
    assert rows(page) == [(SHOTS[0], "needs review")]
    page.goto(shot_url(base, SHOTS[0]))
    page.wait_for_function(READY)
    assert page.inner_text("#shot-status") == "needs review"
    assert "changed since" in page.inner_text("#entry")


def test_ctrl_c_stops_the_server(server: tuple[str, subprocess.Popen[str]]) -> None:
    _base, proc = server
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert proc.stdout is not None and "review stopped" in proc.stdout.read()

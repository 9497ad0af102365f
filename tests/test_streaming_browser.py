"""The H.264 rendition of a built HLS package plays in headless Chromium with hls.js, and the
WebVTT track shows the right cue at a chosen time.

Set-up (session fixtures): Chromium from Debian packages (``apt-get install -y chromium`` when
``/usr/bin/chromium`` is missing; skipped only when apt itself is unavailable), hls.js 1.x from
npm into ``~/.cache/restoro-test-npm`` (reused when present). The package is served with
``http.server`` on 127.0.0.1 with a page that plays it through hls.js, seeks, lets it play and
POSTs a JSON report back; Chromium runs headless, without sandbox and background networking, and
talks to nothing but 127.0.0.1.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from buildkit import build

from restoro.testing.synth import make_source

pytestmark = pytest.mark.slow

NPM_CACHE = Path(os.environ.get("RESTORO_TEST_NPM", Path.home() / ".cache" / "restoro-test-npm"))
SEEK = 1.6  # seconds; the second cue spans 1.5 - 2.9
MANIFEST = """\
restoro: 1
project: browser
sources:
  tape:
    path: media/source.mkv
pipelines:
  main:
    - {stage: ingest, mode: progressive}
titles:
  ep1:
    source: tape
    pipeline: main
    shots: {detector: content, threshold: 27, min_frames: 4}
    audio:
      - {stream: 1, layout: stereo, loudness: -23, language: en}
    captions:
      - {path: media/en.srt, language: en, kind: subtitles}
deliverables:
  web:
    kind: hls
    segment_seconds: 1
    ladder:
      - {codec: h264, height: 120, bitrate: 300k}
    audio:
      - {codec: aac, channels: 2, bitrate: 96k}
"""
SRT = (
    "1\n00:00:00,200 --> 00:00:01,300\nFirst cue\n\n"
    "2\n00:00:01,500 --> 00:00:02,900\nSecond cue, at the seek\n"
)
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pending</title></head>
<body><video id="v" muted playsinline width="160" height="120"></video>
<script src="/hls.js"></script>
<script>
const SEEK = %(seek)s;
const report = {errors: [], supported: false, hlsVersion: Hls.version, samples: []};
const video = document.getElementById("v");
let sent = false;
function send(reason) {
  if (sent) return;
  sent = true;
  report.reason = reason;
  report.currentTime = video.currentTime;
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  report.decodedFrames = q ? q.totalVideoFrames : -1;
  report.tracks = Array.from(video.textTracks).map(t => ({kind: t.kind, language: t.language,
    mode: t.mode, cues: t.cues ? Array.from(t.cues).map(c => [c.startTime, c.endTime, c.text])
      : []}));
  fetch("/result", {method: "POST", body: JSON.stringify(report)});
}
window.onerror = (msg) => { report.errors.push({type: "page", details: String(msg)}); };
report.supported = Hls.isSupported() && MediaSource.isTypeSupported(
  'video/mp4; codecs="avc1.64000c,mp4a.40.2"');
const hls = new Hls({subtitleDisplay: true, startPosition: SEEK});
hls.on(Hls.Events.ERROR, (_e, d) => {
  report.errors.push({type: d.type, details: d.details, fatal: d.fatal});
  if (d.fatal) send("fatal");
});
hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => { hls.subtitleTrack = 0; });
hls.once(Hls.Events.MANIFEST_PARSED, (_e, d) => {
  report.levels = d.levels.map(l => ({codecs: l.videoCodec, width: l.width, height: l.height}));
  video.play().catch(err => report.errors.push({type: "play", details: String(err)}));
});
video.addEventListener("playing", () => { report.startedAt ??= video.currentTime; });
hls.loadSource("/pkg/master.m3u8");
hls.attachMedia(video);
setInterval(() => {
  const t = video.currentTime;
  const track = Array.from(video.textTracks).find(x => x.mode === "showing");
  const active = track && track.activeCues ? Array.from(track.activeCues).map(c => c.text) : [];
  report.samples.push({t: t, active: active});
  if (t >= SEEK + 0.4 && t < 2.9 && active.length) {
    report.activeAt = t;
    report.active = active;
    send("cue");
  }
  if (video.ended) send("ended");
}, 50);
setTimeout(() => send("timeout"), 25000);
</script></body></html>
"""


@pytest.fixture(scope="session")
def hls_js() -> Path:
    dist = NPM_CACHE / "node_modules" / "hls.js" / "dist" / "hls.min.js"
    if not dist.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install hls.js for this test"
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE), "hls.js@1"],
            cwd=NPM_CACHE, capture_output=True, check=True,
        )  # fmt: skip
    assert dist.exists()
    return dist


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    (root / "media").mkdir()
    make_source(
        root / "media" / "source.mkv", width=160, height=120, shots=3, shot_frames=[24, 24, 24],
        audio_channels=2, codec="ffv1", sar="1:1", rate="24",
    )  # fmt: skip
    (root / "media" / "en.srt").write_text(SRT)
    (root / "restoro.yaml").write_text(MANIFEST)
    assert build(root / "restoro.yaml").failed == 0
    return root / "out" / "web" / "ep1"


class _Handler(SimpleHTTPRequestHandler):
    results: list[dict[str, Any]]
    done: threading.Event
    extensions_map = {  # noqa: RUF012
        **SimpleHTTPRequestHandler.extensions_map,
        ".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/iso.segment",
        ".mp4": "video/mp4", ".vtt": "text/vtt", ".js": "text/javascript",
    }  # fmt: skip

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.results.append(json.loads(body))
        self.done.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def _play(chromium: Path, site: Path, tmp: Path) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    done = threading.Event()
    handler = type("Handler", (_Handler,), {"results": results, "done": done})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    args = [
        str(chromium), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", "--disable-quic",
        "--disable-extensions", "--disable-default-apps", "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required", "--mute-audio",
        f"--user-data-dir={tmp / 'profile'}", url,
    ]  # fmt: skip
    log = (tmp / "chromium.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        finished = done.wait(60)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        server.shutdown()
        server.server_close()
    tail = (tmp / "chromium.log").read_text(errors="replace")[-3000:]
    assert finished and results, f"the page never reported back; Chromium said:\n{tail}"
    return results[0]


def test_h264_rendition_plays_in_chromium_with_webvtt_cue(
    chromium: Path, hls_js: Path, package: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(package, site / "pkg")
    shutil.copyfile(hls_js, site / "hls.js")
    (site / "index.html").write_text(PAGE % {"seek": SEEK})
    report = _play(chromium, site, tmp_path)
    detail = json.dumps(report, indent=1)[:4000]
    assert report["supported"], f"MSE/H.264 unsupported in this Chromium: {detail}"
    # hls.js reports a cancelled segment request as a non-fatal "aborted" network error and
    # recovers by itself (it happens under load when it switches fragments); anything fatal,
    # any page error and any other kind of error fails the test.
    errors = [
        e
        for e in report["errors"]
        if not (e.get("fatal") is False and e.get("details") == "aborted")
    ]
    assert errors == [], f"hls.js or the page reported errors: {detail}"
    assert report["reason"] == "cue", detail
    assert report["levels"][0]["codecs"].startswith("avc1.")
    # Playback advanced from the seek point, frames were decoded, and the WebVTT track showing
    # at that time holds the cue that spans it (and only that one).
    assert report["startedAt"] == pytest.approx(SEEK, abs=0.1)
    assert report["startedAt"] + 0.3 <= report["activeAt"] < 2.9
    assert report["decodedFrames"] > 0
    assert report["active"] == ["Second cue, at the seek"]
    (track,) = [t for t in report["tracks"] if t["mode"] == "showing"]
    assert (track["kind"], track["language"]) == ("subtitles", "en")
    cues = {text: (begin, end) for begin, end, text in track["cues"]}
    assert cues.keys() == {"First cue", "Second cue, at the seek"}
    for (begin, end), want in zip(cues.values(), [(0.2, 1.3), (1.5, 2.9)], strict=True):
        assert begin == pytest.approx(want[0], abs=1 / 24) and end == pytest.approx(
            want[1], abs=1 / 24
        )
    assert time.monotonic() - started < 60


SYNC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>sync</title></head>
<body><video id="v" muted playsinline width="160" height="120"></video>
<script>
// Every SourceBuffer hls.js makes, to read where each track's media starts on the timeline.
const buffers = [];
const add = MediaSource.prototype.addSourceBuffer;
MediaSource.prototype.addSourceBuffer = function (type) {
  const sb = add.call(this, type);
  buffers.push([type, sb]);
  return sb;
};
</script>
<script src="/hls.js"></script>
<script>
const report = {errors: []};
const video = document.getElementById("v");
const hls = new Hls({startPosition: 0});
hls.on(Hls.Events.ERROR, (_e, d) => report.errors.push({details: d.details, fatal: d.fatal}));
hls.loadSource("/pkg/master.m3u8");
hls.attachMedia(video);
let sent = false;
const timer = setInterval(() => {
  const ready = buffers.length >= 2 && buffers.every(([, sb]) => sb.buffered.length > 0);
  if (sent || !ready) return;
  sent = true;
  clearInterval(timer);
  report.buffers = buffers.map(([type, sb]) => ({type: type, start: sb.buffered.start(0),
    offset: sb.timestampOffset}));
  fetch("/result", {method: "POST", body: JSON.stringify(report)});
}, 50);
setTimeout(() => { if (!sent) fetch("/result", {method: "POST", body: JSON.stringify(report)}); },
           25000);
</script></body></html>
"""


def test_sound_and_picture_start_together_in_chromium(
    chromium: Path, hls_js: Path, package: Path, tmp_path: Path
) -> None:
    """In Chromium's MSE, as hls.js feeds it, the first picture and the first sound of the
    package sit at the same place on the timeline (within one audio frame)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copytree(package, site / "pkg")
    shutil.copyfile(hls_js, site / "hls.js")
    (site / "index.html").write_text(SYNC_PAGE)
    report = _play(chromium, site, tmp_path)
    starts = {b["type"].split("/")[0]: b["start"] for b in report.get("buffers", [])}
    assert starts.keys() == {"video", "audio"}, report
    assert starts["video"] - starts["audio"] == pytest.approx(0, abs=1024 / 48000), report

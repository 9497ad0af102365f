"""The review server without a browser (Starlette's TestClient on a real build of the two-variant
review project): media are proxies made once from cached frames, requests that name paths are
refused, a client that is not loopback needs the token, and malformed POSTs change nothing."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import warnings
from typing import TYPE_CHECKING

import av
import httpx
import pytest
from buildkit import build, cli
from reviewkit import make_review_project

from restoro import review_file as D
from restoro.review import proxies as P
from restoro.review.server import TOKEN_COOKIE, make_app
from restoro.review.session import ReviewSession, open_session
from restoro.review_links import shot_path

with warnings.catch_warnings():
    # starlette 1.x asks for httpx2 and warns when its test client finds httpx; it works.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

SHOTS = ["ep1@00:00:00:00", "ep1@00:00:00:12", "ep1@00:00:00:24"]
LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> Path:
    m = make_review_project(tmp_path_factory.mktemp("review"), progressive_source)
    build(m, variant="safe", qc=True)
    build(m, variant="clean")
    return m


@pytest.fixture
def session(project: Path, tmp_path: Path) -> Iterator[ReviewSession]:
    s = open_session(project, reviewer="Tester")
    s.review_file = tmp_path / D.REVIEW_FILE  # each test its own decisions
    try:
        yield s
    finally:
        s.ws.close()


def client(s: ReviewSession, token: str | None = None, host: str = "127.0.0.1") -> TestClient:
    return TestClient(make_app(s, token=token), base_url=LOCAL, client=(host, 50123))


def test_shots_and_media_come_from_the_store(session: ReviewSession, tmp_path: Path) -> None:
    c = client(session)
    data = c.get("/api/shots").json()
    assert data["labels"] == ["safe", "clean"] and data["tags"] == ["vfx"]
    assert [s["id"] for s in data["shots"]] == SHOTS
    assert [s["tags"] for s in data["shots"]] == [[], ["vfx"], []]
    assert all(s["built"] == {"safe": True, "clean": True} for s in data["shots"])
    assert all(s["status"] == "unreviewed" for s in data["shots"])
    # QC ran for safe only (a build with qc=True): its flags and metrics, read from the cache.
    assert all(s["qc"]["status"] in ("pass", "warn", "fail") for s in data["shots"])
    assert "PSNR" in data["shots"][0]["qc"]["metrics"]
    assert c.get(shot_path(SHOTS[1])).status_code == 200  # the address the QC report links to
    detail = c.get("/api/shots/" + SHOTS[1].replace("@", "%40")).json()
    assert detail["size"] == {"width": 640, "height": 480}
    assert detail["media"]["clean"]["digest"] == session.shots[SHOTS[1]].digest("clean")
    assert list(detail["qc_detail"]) == ["safe"] and detail["qc_detail"]["safe"]["series"]

    videos = {}
    for role in ("source", "safe", "clean"):
        r = c.get(detail["media"][role]["video"])
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        path = tmp_path / f"{role}.mp4"
        path.write_bytes(r.content)
        with av.open(str(path)) as f:
            st = f.streams.video[0]
            frames = list(f.decode(st))
        # Every frame a key frame (exact stepping), one size for all three (the wipe lines up).
        assert len(frames) == 12 and all(fr.key_frame for fr in frames)
        assert (frames[0].width, frames[0].height) == (640, 480)
        assert [fr.pts for fr in frames] == [i * frames[1].pts for i in range(12)]
        videos[role] = r.content
    assert len(set(videos.values())) == 3  # source, safe and clean differ
    # A second request is a cache hit: the proxy action is not run again.
    st = session.shots[SHOTS[1]]
    spec = P.proxy_spec(
        shot=st.id,
        role="clean",
        kind="video",
        frames=st.digest("clean") or "",
        count=12,
        frame_rate=st.frame_rate,
        size=P.Size(640, 480),
    )
    res, ran = P.ensure(session.ws.store, spec)
    assert not ran
    assert session.ws.store.blob_path(res.outputs["video"].digest).read_bytes() == videos["clean"]
    r = c.get(detail["thumb"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    r = c.get(detail["media"]["safe"]["frame"] + "3")
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get(detail["media"]["safe"]["frame"] + "12").status_code == 404


def test_a_variant_not_built_says_how_to_build_it(project: Path) -> None:
    s = open_session(project, compare=("safe", D.BASE), reviewer="Tester")
    try:
        c = client(s)
        shot = c.get("/api/shots").json()["shots"][0]
        assert shot["built"] == {"safe": True, "base": False}
        detail = c.get(f"/api/shots/{SHOTS[0]}").json()
        assert detail["media"]["base"] == {"build": f"restoro build '{SHOTS[0]}'"}
        r = c.get(f"/media/{SHOTS[0]}/base.mp4")
        assert r.status_code == 404 and "restoro build" in r.text
        r = c.post(
            f"/api/shots/{SHOTS[0]}/decision", json={"decision": "approved", "variant": "base"}
        )
        assert r.status_code == 400 and "not built" in r.json()["error"]
    finally:
        s.ws.close()


TRAVERSALS = [
    "/static/../server.py",
    "/static/..%2Fserver.py",
    "/static/%2e%2e%2fserver.py",
    "/static/%252e%252e%252fserver.py",
    "/static/..%5Cserver.py",
    "/static/app.js%00.py",
    "/static/decisions.py",
    "/media/..%2F..%2Frestoro.yaml/source.mp4",
    "/media/%2Fetc%2Fpasswd/thumb.jpg",
    f"/media/{SHOTS[0]}/..%2F..%2F..%2Frestoro.yaml",
    f"/media/{SHOTS[0]}/%2e%2e%2frestoro.yaml.mp4",
    f"/media/{SHOTS[0]}/..%2F..%2Frestoro.lock.mp4",
    f"/media/{SHOTS[0]}/source%2F..%2F..%2Frestoro.yaml.mp4",
    f"/media/{SHOTS[0]}/..%2Fsafe/frame/0",
    "/shots/..%2F..%2Frestoro.yaml",
    "/api/shots/..%2F..%2Frestoro.yaml",
    "/media/ep1%4000%3A00%3A00%3A00%2F..%2F..%2Frestoro.yaml/source.mp4",
    "/..%2F..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_in_requests_reach_nothing(session: ReviewSession, path: str) -> None:
    r = client(session).get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    body = r.content
    assert b"restoro: 1" not in body and b"root:" not in body and b"import" not in body


def test_a_client_that_is_not_loopback_needs_the_token(session: ReviewSession) -> None:
    token = "t0k3n-for-the-test"
    far = client(session, token=token, host="10.1.2.3")
    for path in ("/", "/api/shots", f"/media/{SHOTS[0]}/safe.mp4", "/static/app.js"):
        r = far.get(path)
        assert r.status_code == 403 and "token" in r.text
    assert far.get("/api/shots?token=wrong").status_code == 403
    far.cookies.set(TOKEN_COOKIE, "wrong")
    assert far.get("/api/shots").status_code == 403
    far.cookies.clear()
    r = far.get("/?token=" + token)
    assert r.status_code == 200 and TOKEN_COOKIE in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    # The cookie it set lets the page's own requests through.
    assert far.get("/api/shots").status_code == 200
    r = far.post(f"/api/shots/{SHOTS[0]}/decision", json={"decision": "note", "comment": "seam"})
    assert r.status_code == 200 and D.load(session.review_file)[SHOTS[0]].comment == "seam"
    # Loopback clients of a server bound elsewhere need no token.
    assert client(session, token=token).get("/api/shots").status_code == 200
    # Bound to loopback (no token): nothing but loopback clients, with a loopback Host.
    assert client(session, host="10.1.2.3").get("/api/shots").status_code == 403
    rebound = TestClient(make_app(session), base_url="http://evil.example:8765")
    assert rebound.get("/api/shots").status_code == 403
    # A DNS name rebound to this machine needs the token even when bound elsewhere.
    rebound = TestClient(make_app(session, token=token), base_url="http://evil.example:8765")
    assert rebound.get("/api/shots").status_code == 403
    assert rebound.get("/api/shots?token=" + token).status_code == 200


JSON = {"content-type": "application/json"}
BAD_POSTS = [
    (SHOTS[0], b"not json", "not JSON"),
    (SHOTS[0], b"[1, 2]", "JSON object"),
    (SHOTS[0], b'{"decision": "maybe"}', "decision must be"),
    (SHOTS[0], b'{"decision": "approved"}', "name its variant"),
    (SHOTS[0], b'{"decision": "approved", "variant": "grainy"}', "unknown variant"),
    (SHOTS[0], b'{"decision": "approved", "variant": "safe", "x": 1}', "unknown field"),
    (SHOTS[0], b'{"decision": "approved", "variant": "safe", "comment": 5}', "comment"),
    (SHOTS[0], b'{"decision": "note"}', "needs a comment"),
    (SHOTS[0], b'{"decision": "approved", "variant": "../safe"}', "unknown variant"),
    ("ep9@00:00:00:00", b'{"decision": "approved", "variant": "safe"}', "unknown shot"),
    ("%2e%2e", b'{"decision": "approved", "variant": "safe"}', "unknown shot"),
]


def test_malformed_posts_are_refused_and_change_nothing(session: ReviewSession) -> None:
    c = client(session)
    for shot, body, message in BAD_POSTS:
        r = c.post(
            f"/api/shots/{shot}/decision",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["error"], (body, r.json())
    url = f"/api/shots/{SHOTS[1]}/decision"
    ok = json.dumps({"decision": "approved", "variant": "safe"})
    r = c.post(url, content=ok, headers={"content-type": "text/plain"})
    assert r.status_code == 415  # a form or text/plain POST from another site is not JSON
    r = c.post(
        url, content=ok, headers={"content-type": "application/json", "origin": "http://a.b"}
    )
    assert r.status_code == 403
    r = c.post("/api/shots/..%2Frestoro.yaml/decision", content=ok, headers=JSON)
    assert r.status_code == 404  # a path is no shot id: no route matches it
    assert not session.review_file.exists()  # nothing was written
    # The digest the page showed must still be the shot's.
    r = c.post(url, json={"decision": "approved", "variant": "safe", "digest": "xxh128:00"})
    assert r.status_code == 409 and "reload" in r.json()["error"]
    assert not session.review_file.exists()
    # A good one is written with the digest of what was reviewed and the reviewer.
    digest = session.shots[SHOTS[1]].digest("safe")
    r = c.post(url, json={"decision": "approved", "variant": "safe", "digest": digest})
    assert r.status_code == 200 and r.json()["status"] == "approved: safe"
    e = D.load(session.review_file)[SHOTS[1]]
    assert (e.decision, e.variant, e.digest, e.reviewer) == ("approved", "safe", digest, "Tester")
    # Rejecting keeps the first compared variant's digest; clearing removes the entry.
    r = c.post(url, json={"decision": "rejected", "comment": "halo on the face"})
    assert r.json()["status"] == "rejected"
    e = D.load(session.review_file)[SHOTS[1]]
    assert (e.variant, e.digest, e.comment) == ("safe", digest, "halo on the face")
    assert c.post(url, json={"decision": "unreviewed"}).json()["status"] == "unreviewed"
    assert SHOTS[1] not in D.load(session.review_file)


def test_review_command_refuses_unknown_variants_titles_and_a_taken_port(project: Path) -> None:
    r = cli("review", "-f", str(project), "--compare", "safe", "grainy", "--port", "0")
    assert r.returncode == 2 and "unknown variant 'grainy'" in r.stderr
    r = cli("review", "ep7", "-f", str(project), "--port", "0")
    assert r.returncode == 2 and "unknown title 'ep7'" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = cli("review", "-f", str(project), "--port", str(taken.getsockname()[1]))
    assert r.returncode == 2 and "error[E269]: cannot listen on 127.0.0.1:" in r.stderr


def _local_address() -> str | None:
    """An address of this machine that is not loopback (the outgoing interface's), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        addr = s.getsockname()[0]
    return None if addr.startswith("127.") else addr


def test_review_command_on_another_host_needs_its_token(project: Path) -> None:
    addr = _local_address()
    if addr is None:
        pytest.skip("this machine has no address but loopback")
    code = "import sys; from restoro.cli.app import main; sys.exit(main(sys.argv[1:]))"
    args = ["review", "-f", str(project), "--host", addr, "--port", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        m = re.match(r"review page: (http://[\d.]+:\d+/)\?token=([\w-]{20,})$", line.strip())
        assert m, line
        base, token = m.groups()
        # Connecting to the machine's own address: the client is not loopback either.
        assert httpx.get(base + "api/shots").status_code == 403
        assert httpx.get(base + "api/shots?token=" + token[:-1]).status_code == 403
        with httpx.Client() as c:
            r = c.get(base + "?token=" + token)
            assert r.status_code == 200 and "restoro review" in r.text
            assert c.get(base + "api/shots").json()["labels"] == ["safe", "clean"]  # cookie
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()

"""The review page's web server: a Starlette app over a ``ReviewSession``.

Requests name shots and variants, never paths: every shot id is looked up among the session's
shots and every variant among the compared ones, and media come from store blobs whose digests
the session's plans gave (``restoro.review.proxies``). The page's own files are a fixed table.

Safety: a request from a loopback client with a loopback ``Host`` (not a rebound DNS name) is
let through; bound to loopback, nothing else is; bound elsewhere, every other request needs the
random token (``?token=`` once, then a cookie). A POST must be ``application/json`` and, when
the browser sends an ``Origin``, from this server's own origin.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from restoro import review_file as D
from restoro.errors import RestoroError
from restoro.review import proxies as P
from restoro.review.session import LIST_METRICS, DecisionError, check_decision
from restoro.review_links import shot_path

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from restoro.review.session import ReviewSession, ShotState

TOKEN_COOKIE = "restoro_review_token"
STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


@cache
def _static(name: str) -> bytes:
    return (resources.files("restoro.review") / "static" / name).read_bytes()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: who may talk to the server (see the module docstring)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = (scope.get("client") or ("", 0))[0]
        local = is_loopback(client) and _host_name(headers.get("host", "")) in LOOPBACK_NAMES
        set_cookie = False
        if local:  # this machine, by a loopback name (a rebound DNS name is not one)
            ok, why = True, ""
        elif self.token is None:
            ok, why = False, "this server answers only on loopback (it was started without --host)"
        else:
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])
            cookie = _cookie(headers.get("cookie", ""), TOKEN_COOKIE)
            set_cookie = secrets.compare_digest(given[0].encode(), self.token.encode())
            ok = set_cookie or secrets.compare_digest(cookie.encode(), self.token.encode())
            why = "a token is required: open the URL `restoro review` printed"
        if not ok:
            await _plain(403, f"forbidden: {why}\n")(scope, receive, send)
            return
        if scope["method"] == "POST":
            refused = _post_problem(headers)
            if refused is not None:
                await _plain(refused[0], refused[1] + "\n")(scope, receive, send)
                return
        if not set_cookie:
            await self.app(scope, receive, send)
            return
        cookie_value = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"set-cookie", cookie_value.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain; charset=utf-8")


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return ""


def _post_problem(headers: dict[str, str]) -> tuple[int, str] | None:
    """Why a POST is refused (status, message), or None: not JSON (a form or plain-text POST
    another site could send without asking), or from another origin."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return 415, "a POST must be application/json"
    origin = headers.get("origin")
    if origin is not None:
        netloc = origin.split("://", 1)[-1]
        if netloc != headers.get("host", ""):
            return 403, f"cross-origin POST refused (origin {origin})"
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def media_url(shot_id: str, name: str) -> str:
    return f"/media/{quote(shot_id, safe='')}/{quote(name, safe='')}"


# -- the app --------------------------------------------------------------------------------------


def make_app(session: ReviewSession, *, token: str | None = None) -> Starlette:
    """The app serving ``session``; ``token`` is required from clients that are not loopback
    (None: only loopback clients are answered at all)."""

    def shot_or_none(request: Request) -> ShotState | None:
        return session.shots.get(request.path_params["shot"])

    def page(request: Request) -> Response:
        if "shot" in request.path_params and shot_or_none(request) is None:
            return HTMLResponse(_not_found(request.path_params["shot"]), status_code=404)
        return HTMLResponse(_static("index.html"), headers={"cache-control": "no-cache"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _plain(404, "not found\n")
        return Response(
            _static(name), media_type=STATIC[name], headers={"cache-control": "no-cache"}
        )

    def shot_list(request: Request) -> Response:
        try:
            session.refresh()
        except RestoroError as exc:
            return _error(500, exc.render())
        with session.lock:
            shots = [_summary(session, session.shots[s]) for s in session.order]
            tags = sorted({t for s in session.shots.values() for t in s.tags})
            titles = list(session.titles or session.ws.manifest.titles)
            analysed = {s.title for s in session.shots.values()}
        return JSONResponse(
            {
                "project": session.ws.manifest.project,
                "reviewer": session.reviewer,
                "labels": list(session.labels),
                "review_file": D.REVIEW_FILE,
                "titles": titles,
                "not_analysed": [t for t in titles if t not in analysed],
                "tags": tags,
                "metrics": [label for _c, _m, label in LIST_METRICS],
                "shots": shots,
            }
        )

    def shot_detail(request: Request) -> Response:
        st = shot_or_none(request)
        if st is None:
            return _error(404, f"unknown shot {request.path_params['shot']!r}")
        with session.lock:
            return JSONResponse(_detail(session, st))

    async def decide(request: Request) -> Response:
        shot_id = request.path_params["shot"]
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"the body is not JSON: {exc}")
        try:
            d = check_decision(session, shot_id, body)
        except DecisionError as exc:
            return _error(exc.status, str(exc))
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(
                session.decide, shot_id, d["decision"], variant=d["variant"], comment=d["comment"]
            )
        except RestoroError as exc:
            return _error(500, exc.render())
        with session.lock:
            return JSONResponse(_summary(session, session.shots[shot_id]))

    def media(request: Request) -> Response:
        st = shot_or_none(request)
        if st is None:
            return _plain(404, "unknown shot\n")
        name = request.path_params["name"]
        if name == "thumb.jpg":
            role = _thumb_role(session, st)
            if role is None:
                return _plain(404, "nothing of this shot is built yet\n")
            return _proxy(session, st, role, "thumb")
        role, dot, ext = name.rpartition(".")
        if not dot or ext != "mp4" or role not in ("source", *session.labels):
            return _plain(404, "no such media\n")
        return _proxy(session, st, role, "video")

    def frame(request: Request) -> Response:
        st = shot_or_none(request)
        role = request.path_params["role"]
        if st is None or role not in ("source", *session.labels):
            return _plain(404, "no such media\n")
        n = request.path_params["n"]
        if not 0 <= n < st.frames:
            return _plain(404, f"frame {n} is outside the shot (0-{st.frames - 1})\n")
        return _frame_png(session, st, role, n)

    routes = [
        Route("/", page),
        Route("/shots/{shot}", page),
        Route("/static/{name}", static),
        Route("/api/shots", shot_list),
        Route("/api/shots/{shot}", shot_detail),
        Route("/api/shots/{shot}/decision", decide, methods=["POST"]),
        Route("/media/{shot}/{name}", media),
        Route("/media/{shot}/{role}/frame/{n:int}", frame),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, token=token)
    return app


def _thumb_role(session: ReviewSession, st: ShotState) -> str | None:
    for label in session.labels:
        if st.digest(label):
            return label
    return "source" if st.source is not None else None


def _frames_of(st: ShotState, role: str) -> tuple[str | None, dict[str, Any] | None]:
    res = st.source if role == "source" else st.result(role)
    if res is None:
        return None, None
    return res.outputs["frames"].digest, res.meta.get("format")


def _display_format(session: ReviewSession, st: ShotState) -> dict[str, Any] | None:
    """The format whose display size all of the shot's proxies share: the first compared
    variant that is built, else the source."""
    for role in (*session.labels, "source"):
        _d, fmt = _frames_of(st, role)
        if fmt is not None:
            return fmt
    return None


def _proxy(session: ReviewSession, st: ShotState, role: str, kind: str) -> Response:
    digest, fmt = _frames_of(st, role)
    shown = _display_format(session, st)
    if digest is None or shown is None:
        hint = session.build_command(st, role) if role != "source" else "restoro build"
        return _plain(404, f"{role} of {st.id} is not built; build it with: {hint}\n")
    spec = P.proxy_spec(
        shot=st.id,
        role=role,
        kind=kind,
        frames=digest,
        count=st.frames,
        frame_rate=st.frame_rate or str(shown["frame_rate"]),
        size=P.display_size(shown),
        title=st.title,
    )
    try:
        res, _ran = P.ensure(session.ws.store, spec)
    except RestoroError as exc:
        return _plain(500, exc.render() + "\n")
    out = res.outputs["video" if kind == "video" else "thumb"]
    return FileResponse(
        session.ws.store.blob_path(out.digest),
        media_type="video/mp4" if kind == "video" else "image/jpeg",
        headers={"cache-control": "no-cache"},
    )


def _frame_png(session: ReviewSession, st: ShotState, role: str, n: int) -> Response:
    """Frame ``n`` of ``role`` at the full size of the shown variant (the source scaled to it,
    nearest neighbour: its own pixels, enlarged), as PNG, for the 1:1 zoom."""
    from restoro.media.ffmpeg import full_argv
    from restoro.media.frameio import input_filters

    digest, _fmt = _frames_of(st, role)
    full = _display_format(session, st)
    if digest is None or full is None:
        return _plain(404, f"{role} of {st.id} is not built\n")
    blob = session.ws.store.blob_path(digest)
    vf = "".join(f + "," for f in input_filters(blob))  # a mezzanine: its working frames
    vf += f"select=eq(n\\,{n}),scale={full['width']}:{full['height']}:flags=neighbor,format=rgb24"
    argv = full_argv(
        ["-i", str(blob), "-vf", vf, "-frames:v", "1"] + ["-f", "image2pipe", "-c:v", "png", "-"]
    )
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0 or not proc.stdout:
        return _plain(500, "could not read the frame: " + proc.stderr.decode(errors="replace"))
    return Response(proc.stdout, media_type="image/png", headers={"cache-control": "no-cache"})


def _qc_summary(row: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for check, metric, label in LIST_METRICS:
        v = row.metrics.get(check, {}).get(metric)
        if isinstance(v, (int, float)):
            metrics[label] = round(float(v), 3)
    return {
        "status": row.status,
        "findings": [
            {"check": f["check"], "severity": f["severity"], "message": f["message"]}
            for f in row.findings
        ],
        "metrics": metrics,
    }


def _summary(session: ReviewSession, st: ShotState) -> dict[str, Any]:
    first_qc = next((st.qc[lb] for lb in session.labels if lb in st.qc), None)
    entry = session.entries.get(st.id)
    return {
        "id": st.id,
        "title": st.title,
        "index": st.index,
        "timecode": st.timecode,
        "frames": st.frames,
        "tags": list(st.tags),
        "status": session.status(st.id),
        "built": {lb: st.digest(lb) is not None for lb in session.labels},
        "qc": _qc_summary(first_qc) if first_qc is not None else None,
        "url": shot_path(st.id),
        "thumb": media_url(st.id, "thumb.jpg") if _thumb_role(session, st) else None,
        "comment": entry.comment if entry is not None else "",
    }


def _detail(session: ReviewSession, st: ShotState) -> dict[str, Any]:
    out = _summary(session, st)
    fmt = _display_format(session, st)
    size = P.display_size(fmt) if fmt is not None else None
    entry = session.entries.get(st.id)
    media: dict[str, Any] = {}
    for role in ("source", *session.labels):
        digest, _f = _frames_of(st, role)
        media[role] = (
            {
                "video": media_url(st.id, f"{role}.mp4"),
                "frame": f"/media/{quote(st.id, safe='')}/{quote(role, safe='')}/frame/",
                "digest": digest if role != "source" else None,
            }
            if digest is not None
            else {"build": session.build_command(st, role) if role != "source" else "restoro build"}
        )
    qc = {}
    for lb in session.labels:
        row = st.qc.get(lb)
        if row is not None:
            qc[lb] = {**_qc_summary(row), "series": row.series, "all_metrics": row.metrics}
    i = session.order.index(st.id)
    out.update(
        {
            "rate": st.frame_rate or (fmt or {}).get("frame_rate"),
            "start": st.start,
            "size": {"width": size.width, "height": size.height} if size else None,
            "full": {"width": fmt["width"], "height": fmt["height"]} if fmt else None,
            "media": media,
            "qc_detail": qc,
            "entry": entry.as_yaml() if entry is not None else None,
            "prev": session.order[i - 1] if i > 0 else None,
            "next": session.order[i + 1] if i + 1 < len(session.order) else None,
        }
    )
    return out


def _not_found(shot_id: str) -> str:
    import html

    return (
        "<!doctype html><meta charset='utf-8'><title>unknown shot</title>"
        f"<p>No shot {html.escape(shot_id)!s} in this review. <a href='/'>All shots</a></p>"
    )


def new_token() -> str:
    return secrets.token_urlsafe(18)

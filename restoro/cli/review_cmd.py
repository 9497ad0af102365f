"""``restoro review [TITLE]``: the review page, served from this machine (docs/review.md)."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from restoro.cli import options as O  # noqa: N812, TC001 - typer reads annotations
from restoro.review_links import DEFAULT_HOST, DEFAULT_PORT


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); InputError when taken."""
    from restoro.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(
            f"--host {host}: {exc.strerror}", code="E269", hint="give an address or a name"
        ) from None
    family, kind, proto, _name, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            code="E269",
            hint="another program (or another restoro review) uses it: pick another --port",
        ) from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def page_url(host: str, port: int, token: str | None) -> str:
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = socket.gethostname()
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def register(app: typer.Typer) -> None:
    @app.command("review")
    def review(
        title: Annotated[
            str | None, typer.Argument(help="Review only this title (default: all).")
        ] = None,
        manifest: O.Manifest = None,
        host: Annotated[
            str,
            typer.Option(
                "--host",
                help="Address to listen on. Anything but loopback requires the printed token.",
            ),
        ] = DEFAULT_HOST,
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = DEFAULT_PORT,
        reviewer: Annotated[
            str | None,
            typer.Option("--reviewer", help="Name on the decisions (default: git user.name)."),
        ] = None,
        compare: Annotated[
            tuple[str, str] | None,
            typer.Option(
                "--compare",
                help="The two variants to compare (base = the build without --variant); "
                "default: the manifest's first two.",
                show_default=False,
            ),
        ] = None,
        device: O.Device = "auto",
    ) -> None:
        """Serve the review page: compare variants shot by shot and record decisions."""
        import uvicorn

        from restoro.plan.workspace import find_manifest
        from restoro.review.server import is_loopback, make_app, new_token
        from restoro.review.session import open_session

        pair = tuple(compare) if compare and all(compare) else None
        path = find_manifest(manifest)
        sock = bind(host, port)  # a port in use is refused before the plans
        try:
            session = open_session(
                path,
                compare=pair,
                reviewer=reviewer,
                titles=(title,) if title else (),
                device=device,
            )
        except BaseException:
            sock.close()
            raise
        try:
            token = None if is_loopback(host) else new_token()
            real_port = sock.getsockname()[1]
            app_ = make_app(session, token=token)
            config = uvicorn.Config(app_, log_level="warning", access_log=False, lifespan="off")
            server = uvicorn.Server(config)
            print(f"review page: {page_url(host, real_port, token)}", flush=True)
            print(
                f"comparing {' / '.join(session.labels)} · {len(session.order)} shots · "
                f"reviewer {session.reviewer} · decisions in {session.review_file}",
                flush=True,
            )
            print("press Ctrl-C to stop", flush=True)
            try:
                server.run(sockets=[sock])  # type: ignore[list-item]
            except KeyboardInterrupt:
                pass
            print("review stopped", flush=True)
        finally:
            sock.close()
            session.ws.close()

"""The store on an object store (``s3://bucket/prefix``) against a real S3 server (moto's).

A ``ThreadedMotoServer`` on 127.0.0.1 serves the whole module; each test gets its own bucket and
local cache directory. Builds through the s3 store are compared byte for byte with a build on a
local store; the put-if-absent and lease contracts are raced by threads against the server.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from buildkit import cli, executed, json_lines  # noqa: E402
from conftest import SMALL_MANIFEST  # noqa: E402

from restoro.cli.app import main  # noqa: E402
from restoro.engine.keys import digest_bytes, digest_hex, key_of  # noqa: E402
from restoro.engine.leases import HOST, LeaseInfo, claim_or_wait  # noqa: E402
from restoro.engine.store import ActionResult, Store, entry_bytes  # noqa: E402
from restoro.errors import CorruptEntry  # noqa: E402
from restoro.farm.remote import RemoteStore  # noqa: E402
from restoro.farm.remote_leases import ObjectLease, ObjectLeases  # noqa: E402
from restoro.plan.build import Builder, BuildOptions  # noqa: E402
from restoro.plan.workspace import Workspace  # noqa: E402

if TYPE_CHECKING:
    from pathlib import Path

# analysis, an ingest piece (with its shot scores), shots; 3 × (extract, chain, chunk); audio,
# master
TOTAL = 3 + 3 * 3 + 1 + 1
KEY = "0123456789abcdef0123456789abcdef"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
CLEARED = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "RESTORO_STORE_OPTIONS")


@pytest.fixture(scope="module")
def s3_endpoint() -> Any:
    """A real S3 server on loopback, with the AWS environment pointing at it."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)  # no request log lines
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {**AWS, "AWS_ENDPOINT_URL": endpoint}
    saved = {k: os.environ.get(k) for k in (*env, *CLEARED)}
    os.environ.update(env)
    for k in CLEARED:
        os.environ.pop(k, None)
    try:
        yield endpoint
    finally:
        server.stop()
        werkzeug.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _client() -> Any:
    import boto3

    return boto3.client("s3")


def _new_bucket() -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    _client().create_bucket(Bucket=name)
    return name


def _keys(bucket: str, prefix: str = "") -> list[str]:
    pages = _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def bucket(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RESTORO_CACHE_DIR", str(tmp_path / "cache"))
    return _new_bucket()


def _project(root: Path, source: Path) -> Path:
    (root / "media").mkdir(parents=True)
    shutil.copy(source, root / "media" / "source.mkv")
    manifest = root / "restoro.yaml"
    manifest.write_text(SMALL_MANIFEST, encoding="utf-8")
    return manifest


def _build(manifest: Path, url: str | None = None, **kw: Any) -> Any:
    ws = Workspace(manifest, store_url=url)
    try:
        return Builder(ws, BuildOptions(**kw)).build()
    finally:
        ws.close()


def _master(manifest: Path) -> bytes:
    return (manifest.parent / "out" / "master" / "ep1.mov").read_bytes()


@pytest.fixture(scope="module")
def local_project(tmp_path_factory: pytest.TempPathFactory, progressive_source: Path) -> Path:
    """The project built on its local store: the reference bytes, and a store to push."""
    manifest = _project(tmp_path_factory.mktemp("local"), progressive_source)
    assert _build(manifest).executed == TOTAL
    return manifest


@pytest.fixture(scope="module")
def s3_built(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory, progressive_source: Path
) -> tuple[str, Path]:
    """The same project built once on ``s3://BUCKET/main`` (its own local cache)."""
    tmp = tmp_path_factory.mktemp("s3-built")
    name = _new_bucket()
    saved = os.environ.get("RESTORO_CACHE_DIR")
    os.environ["RESTORO_CACHE_DIR"] = str(tmp / "cache")
    try:
        manifest = _project(tmp / "p", progressive_source)
        report = _build(manifest, f"s3://{name}/main")
    finally:
        if saved is None:
            os.environ.pop("RESTORO_CACHE_DIR", None)
        else:
            os.environ["RESTORO_CACHE_DIR"] = saved
    assert (report.executed, report.failed) == (TOTAL, 0)
    return name, manifest


# -- builds -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_s3_build_is_byte_identical_and_a_fresh_cache_runs_nothing(
    s3_built: tuple[str, Path],
    local_project: Path,
    tmp_path: Path,
    progressive_source: Path,
) -> None:
    name, manifest = s3_built
    assert _master(manifest) == _master(local_project)
    keys = _keys(name, "main/")
    assert sum(k.startswith("main/ac/") for k in keys) == TOTAL
    assert {k.split("/")[1] for k in keys} == {"VERSION", "ac", "cas"}  # no lease, no probe
    # A second checkout with an empty local cache, through the real CLI: all from the remote.
    other = _project(tmp_path / "q", progressive_source)
    proc = cli(
        "build",
        "-f",
        str(other),
        "--store",
        f"s3://{name}/main",
        "--json",
        env={"RESTORO_CACHE_DIR": str(tmp_path / "fresh-cache")},
    )
    assert proc.returncode == 0, proc.stderr
    summary = json_lines(proc.stdout)[-1]
    assert (summary["executed"], summary["cached"]) == (0, TOTAL)
    assert _master(other) == _master(local_project)
    assert not (other.parent / ".restoro" / "cas").exists()  # the store is the bucket
    assert "testing" not in proc.stdout  # no credential in any event


@pytest.mark.slow
def test_a_corrupt_remote_blob_is_not_served_and_is_rebuilt(
    s3_built: tuple[str, Path],
    local_project: Path,
    bucket: str,
    tmp_path: Path,
    progressive_source: Path,
) -> None:
    name, _ = s3_built
    s3 = _client()
    for key in _keys(name, "main/"):  # a copy of the built store, to damage
        s3.copy_object(Bucket=bucket, Key="c/" + key[5:], CopySource={"Bucket": name, "Key": key})
    good = _master(local_project)
    hx = digest_hex(digest_bytes(good))
    blob = f"c/cas/{hx[:2]}/{hx[2:]}"
    bad = bytes(b ^ 0xFF for b in good[:64]) + good[64:]  # same size: only the digest tells
    s3.put_object(Bucket=bucket, Key=blob, Body=bad)

    manifest = _project(tmp_path / "p", progressive_source)
    url = f"s3://{bucket}/c"
    with pytest.raises(CorruptEntry, match=digest_bytes(good)):
        _build(manifest, url)
    assert not (manifest.parent / "out" / "master" / "ep1.mov").exists()  # never served
    keys = _keys(bucket, "c/")
    assert blob not in keys
    assert any(k.startswith("c/quarantine/") and k.endswith(hx[2:]) for k in keys)
    cache = tmp_path / "cache"
    assert not any((cache / "stores").glob(f"*/cas/{hx[:2]}/{hx[2:]}"))
    assert list((cache / "stores").glob("*/quarantine/*.note.json"))

    again = _build(manifest, url)
    ran = [r for r in again.records if r.status == "executed"]
    assert [(r.stage, r.reason) for r in ran] == [("prores-master", "output-missing")]
    assert _master(manifest) == good
    assert RemoteStore(url).verify(full=True).ok


@pytest.mark.slow
def test_push_and_pull_move_only_what_is_missing(
    local_project: Path, bucket: str, tmp_path: Path, progressive_source: Path, capsys: Any
) -> None:
    url = f"s3://{bucket}/shared"
    local = Store(local_project.parent / ".restoro")
    blobs = [p for p, d in local._blob_files() if d]
    entries = list(local.iter_actions())
    local.close()

    def run(*args: str, status: int = 0) -> dict[str, Any]:
        assert main([*args, "-f", str(local_project), "--json"]) == status
        return dict(json.loads(capsys.readouterr().out.splitlines()[-1]))

    def sync(verb: str, where: Path) -> dict[str, Any]:
        flag = "--to" if verb == "push" else "--from"
        assert main(["cache", verb, "-f", str(where), flag, url, "--json"]) == 0
        return dict(json.loads(capsys.readouterr().out.splitlines()[-1]))

    first = sync("push", local_project)
    assert (first["blobs_copied"], first["actions_copied"]) == (len(blobs), TOTAL)
    assert first["bytes_copied"] == sum(p.stat().st_size for p in blobs)
    again = sync("push", local_project)
    assert (again["blobs_copied"], again["actions_copied"]) == (0, 0)
    assert (again["blobs_present"], again["actions_present"]) == (len(blobs), TOTAL)

    ls = run("cache", "ls", "--store", url)
    assert sum(v["entries"] for v in ls["stages"].values()) == TOTAL
    assert (ls["usage"]["actions"], ls["usage"]["blobs"]) == (TOTAL, len(blobs))

    # Damage the object store: one entry lost, the master's blob corrupted (same size).
    s3 = _client()
    master = digest_bytes(_master(local_project))
    owner = next(r for r in entries if master in {o.digest for o in r.outputs.values()})
    lost = next(r for r in entries if r.key != owner.key)
    s3.delete_object(Bucket=bucket, Key=f"shared/ac/{lost.key[:2]}/{lost.key[2:]}.json")
    hx = digest_hex(master)
    size = next(o.size for o in owner.outputs.values() if o.digest == master)
    s3.put_object(Bucket=bucket, Key=f"shared/cas/{hx[:2]}/{hx[2:]}", Body=b"\0" * size)
    verify = run("cache", "verify", "--store", url, status=1)
    assert verify["blobs_bad"] == 1 and verify["actions_bad"] == 1  # the master's entry too
    assert any(hx[2:] in p for p in verify["problems"])
    # Push again: exactly the quarantined blob and the two missing entries go up.
    third = sync("push", local_project)
    assert (third["blobs_copied"], third["actions_copied"]) == (1, 2)
    assert run("cache", "verify", "--store", url)["ok"] is True

    other = _project(tmp_path / "q", progressive_source)
    pulled = sync("pull", other)
    assert (pulled["blobs_copied"], pulled["actions_copied"]) == (len(blobs), TOTAL)
    assert sync("pull", other)["blobs_copied"] == 0
    report = _build(other)  # on its own local store, now full
    assert report.executed == 0
    assert _master(other) == _master(local_project)


# -- put-if-absent and leases under contention ----------------------------------------------


def _race(n: int, fn: Any) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released at once; their results in order."""
    start = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        start.wait(timeout=30)
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_conditional_create_has_exactly_one_winner(bucket: str) -> None:
    store = RemoteStore(f"s3://{bucket}/p")
    etags = _race(8, lambda i: store.remote.put("x/one", f"{i}".encode(), if_none_match=True))
    assert sum(e is not None for e in etags) == 1
    # The winner's bytes are what the object holds.
    winner = next(i for i, e in enumerate(etags) if e is not None)
    assert _client().get_object(Bucket=bucket, Key="p/x/one")["Body"].read() == f"{winner}".encode()
    store.close()


def test_racing_commits_of_one_action_record_one_entry(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/p"
    stores = [RemoteStore(url, cache=tmp_path / f"c{i}") for i in range(6)]
    outs = [s.put_bytes(b"identical output bytes") for s in stores]
    assert len({o.digest for o in outs}) == 1

    def commit(i: int) -> ActionResult:
        res = ActionResult(KEY, "t@0/stage", {"i": i}, {"out": outs[i]}, created=float(i))
        return stores[i].put_action_if_absent(res)

    won = _race(len(stores), commit)
    assert len({w.created for w in won}) == 1  # everyone got the one recorded entry
    remote = json.loads(
        _client().get_object(Bucket=bucket, Key=f"p/ac/{KEY[:2]}/{KEY[2:]}.json")["Body"].read()
    )
    assert remote["created"] == won[0].created
    for s in stores:  # and each local cache agrees
        assert s.lookup(KEY).result.created == won[0].created  # type: ignore[union-attr]
        s.close()


def test_a_tampered_remote_entry_is_reported_refused_and_recorded_again(
    bucket: str, tmp_path: Path
) -> None:
    """The object store's entries go through the same parse as local ones: a valid-JSON meta
    edit and a cut-off entry are reported by verify, refused by a lookup from a fresh cache,
    and quarantined on the object store."""
    url = f"s3://{bucket}/t"
    s3 = _client()
    s3.put_object(Bucket=bucket, Key="t/VERSION", Body=b"1\n")  # a store from before checksums
    store = RemoteStore(url)
    out = store.put_bytes(b"frames of shot 2")
    key, key_json = key_of({"stage": "test", "inputs": {"frames": out.digest}})
    res = ActionResult(key, "ep1@00:00:00:12/test", key_json, {"frames": out}, meta={"frames": 105})
    store.put_action_if_absent(res)
    store.close()
    # Its first writer raised its VERSION: an older restoro now refuses it instead of
    # quarantining every entry it cannot read.
    assert s3.get_object(Bucket=bucket, Key="t/VERSION")["Body"].read() == b"2\n"
    rel = f"ac/{key[:2]}/{key[2:]}.json"
    good = s3.get_object(Bucket=bucket, Key=f"t/{rel}")["Body"].read()
    assert good == entry_bytes(res)
    edited = good.replace(b'"frames": 105}', b'"frames": 112}')
    assert edited != good and json.loads(edited)["meta"] == {"frames": 112}
    for n, bad in enumerate([edited, good[: len(good) // 2]]):
        s3.put_object(Bucket=bucket, Key=f"t/{rel}", Body=bad)
        report = RemoteStore(url, cache=tmp_path / f"v{n}").verify(full=True)
        [problem] = report.problems
        says = "checksum mismatch" if n == 0 else "not valid JSON"
        assert problem.startswith(rel) and says in problem, problem
        assert "(action ep1@00:00:00:12/test)" in problem or n == 1, problem
        assert f"t/{rel}" not in _keys(bucket, "t/ac/")
        quarantined = [k for k in _keys(bucket, "t/quarantine/") if not k.endswith(".note.json")]
        assert sum(s3.get_object(Bucket=bucket, Key=k)["Body"].read() == bad for k in quarantined)

        s3.put_object(Bucket=bucket, Key=f"t/{rel}", Body=bad)
        fresh = RemoteStore(url, cache=tmp_path / f"l{n}")
        got = fresh.lookup(key)
        assert got.status == "corrupt" and says in got.detail and rel in got.detail, got.detail
        assert f"t/{rel}" not in _keys(bucket, "t/ac/")
        assert fresh.fetch(out.digest) == "ok"  # as a re-run would have it locally
        assert fresh.put_action_if_absent(res).meta == {"frames": 105}  # recorded again, whole
        assert fresh.lookup(key).status == "hit"
        fresh.close()
    assert s3.get_object(Bucket=bucket, Key=f"t/{rel}")["Body"].read() == good


def test_a_lease_claim_has_exactly_one_winner_and_takeover_too(bucket: str) -> None:
    store = RemoteStore(f"s3://{bucket}/p")
    leases = ObjectLeases(store.remote)
    got = _race(8, lambda i: leases.try_claim(KEY, ttl=30, owner=f"c{i}"))
    winners = [lease for lease, _, _ in got if lease is not None]
    assert len(winners) == 1
    assert all(h is not None and h.token == winners[0].info.token for le, h, _ in got if le is None)
    winners[0].release()
    assert leases.read(KEY) is None

    # An expired lease of a dead worker on another host: taken over by exactly one claimant.
    dead = LeaseInfo(pid=4242, host="render-07", token="dead", heartbeat=0.0, expiry=1.0)
    etag = store.remote.put(f"locks/leases/{KEY}", json.dumps(dead.__dict__).encode())
    assert etag is not None
    got = _race(8, lambda i: leases.try_claim(KEY, ttl=30, owner=f"c{i}"))
    took = [(lease, t) for lease, _, t in got if lease is not None]
    assert len(took) == 1 and took[0][1] is True
    new = took[0][0]
    # The presumed-dead holder wakes up: its heartbeat and its release change nothing.
    ghost = ObjectLease(leases, f"locks/leases/{KEY}", dead, 30, etag)
    ghost.refresh()
    ghost.release()
    current = leases.read(KEY)
    assert ghost.lost and current is not None and current[0].token == new.info.token
    new.refresh()  # the live holder's heartbeat still works
    assert leases.read(KEY)[0].expiry > current[0].expiry  # type: ignore[index]
    new.release()
    assert leases.read(KEY) is None
    store.close()


def test_actions_claim_their_lease_on_the_object_store(bucket: str) -> None:
    store = RemoteStore(f"s3://{bucket}/p")
    waits: list[LeaseInfo] = []
    lease, found, _ = claim_or_wait(store.locks / "leases", KEY, lambda: None, ttl=30)
    assert lease is not None and found is None
    assert _keys(bucket, "p/locks/") == [f"p/locks/leases/{KEY}"]
    assert not (store.locks / "leases" / KEY).exists()  # not a local file
    result = "done"
    release = threading.Timer(0.3, lease.release)
    release.start()
    t0 = time.monotonic()
    other, found, _ = claim_or_wait(
        store.locks / "leases", KEY, lambda: result, ttl=30, on_wait=waits.append
    )
    # The waiter saw the holder (this host and pid) and then the result.
    assert other is None and found == "done" and waits[0].host == HOST
    assert time.monotonic() - t0 < 5
    # The release (a DELETE) must not reach the server during a later test: the write-access
    # test counts the server's last unauthenticated requests.
    release.join()
    store.close()


# -- bad input, before any work ---------------------------------------------------------------


def _fails(capsys: Any, manifest: Path, url: str) -> str:
    assert main(["build", "-f", str(manifest), "--store", url]) == 2
    err = str(capsys.readouterr().err)
    assert not (manifest.parent / "out").exists()
    assert not (manifest.parent / ".restoro" / "cas").exists()
    return err


def test_bad_store_urls_fail_before_any_work(
    bucket: str,
    s3_endpoint: str,
    workspace: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = _fails(capsys, workspace, "foo://somewhere/x")
    assert "unknown store URL scheme 'foo'" in err
    err = _fails(capsys, workspace, "gs://bucket/x")
    assert "store URL scheme 'gs' is not supported" in err and "put-if-absent" in err
    err = _fails(capsys, workspace, "s3://AKIAEXAMPLE:hunter2@bucket/x")
    assert "carries credentials" in err and "hunter2" not in err
    err = _fails(capsys, workspace, f"s3://{bucket}-missing/x")
    assert f"the bucket '{bucket}-missing' does not exist at {s3_endpoint}" in err
    assert "aws s3 mb" in err
    with monkeypatch.context() as m:
        m.setitem(__import__("sys").modules, "s3fs", None)  # as if not installed
        err = _fails(capsys, workspace, f"s3://{bucket}/x")
        assert "needs the 's3fs' package" in err and "pip install 'restoro[farm]'" in err
    with monkeypatch.context() as m:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nobody listens there
        m.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        t0 = time.monotonic()
        err = _fails(capsys, workspace, f"s3://{bucket}/x")
        assert "cannot reach the object store at http://127.0.0.1:" in err
        assert time.monotonic() - t0 < 10
    assert _keys(bucket) == []
    _client().put_object(Bucket=bucket, Key="newer/VERSION", Body=b"99\n")
    err = _fails(capsys, workspace, f"s3://{bucket}/newer")
    assert f"the store s3://{bucket}/newer has schema '99'" in err and "upgrade restoro" in err


def test_a_store_without_write_access_fails_before_any_work(
    bucket: str, s3_endpoint: str, workspace: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who may read the bucket but not write it (moto enforcing an IAM policy)."""
    import urllib.request

    import boto3
    from moto import settings

    def reset_auth(count: str) -> None:
        req = urllib.request.Request(
            f"{s3_endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(req).close()

    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    reset_auth("3")  # the three IAM calls below are the last unauthenticated ones
    try:
        iam = boto3.client("iam")
        iam.create_user(UserName="reader")
        # Read-only (moto authorises HeadBucket as its own action; AWS as s3:ListBucket).
        read = ["s3:GetObject", "s3:ListBucket", "s3:HeadBucket"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": read, "Resource": "*"}],
        }
        iam.put_user_policy(UserName="reader", PolicyName="ro", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        err = _fails(capsys, workspace, f"s3://{bucket}/x")
    finally:
        reset_auth(str(before))
    assert f"no write access to the store s3://{bucket}/x" in err
    assert "s3:PutObject" in err  # the hint
    assert key["SecretAccessKey"] not in err
    assert _keys(bucket) == []


# -- the Ray executor on the s3 store -------------------------------------------------------


@pytest.mark.slow
def test_ray_build_on_the_s3_store_is_byte_identical(
    s3_endpoint: str,
    local_project: Path,
    bucket: str,
    tmp_path: Path,
    progressive_source: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("ray")
    from raykit import RAY_ENV, Cluster

    for k, v in RAY_ENV.items():
        monkeypatch.setenv(k, v)
    # Workers reach the same S3 server but keep their own local cache: what the coordinator
    # accepts and materialises can only have come through the bucket.
    (tmp_path / "ray").mkdir()
    cluster = Cluster(tmp_path / "ray", {"RESTORO_CACHE_DIR": str(tmp_path / "worker-cache")})
    try:
        cluster.start_head()
        cluster.add_worker("w1")
        manifest = _project(tmp_path / "p", progressive_source)
        url = f"s3://{bucket}/farm"
        report = _build(manifest, url, executor="ray", ray_address=cluster.address)
    finally:
        cluster.stop()
    assert (report.executed, report.failed) == (TOTAL, 0)
    assert len(executed(report)) == TOTAL
    assert _master(manifest) == _master(local_project)
    assert sum(k.startswith("farm/ac/") for k in _keys(bucket, "farm/")) == TOTAL
    assert list((tmp_path / "worker-cache" / "stores").glob("*/cas/*/*"))  # workers' own cache
    assert RemoteStore(url).verify(full=True).ok


COORDINATOR = """
import json, sys, threading
from pathlib import Path
from restoro.plan.build import Builder, BuildOptions
from restoro.plan.workspace import Workspace
ws = Workspace(Path(sys.argv[1]), store_url=sys.argv[2])
b = Builder(ws, BuildOptions())
lock = threading.Lock()
def emit(e):
    with lock:  # events come from several threads: one whole line each
        sys.stdout.write(json.dumps(e, default=str) + "\\n")
        sys.stdout.flush()
b.events.subscribe(emit)
b.build()
ws.close()
"""


@pytest.mark.slow
def test_two_coordinators_on_one_bucket_run_each_action_once(
    bucket: str, tmp_path: Path, progressive_source: Path, local_project: Path
) -> None:
    """Two checkouts of one project, each with its own local cache, build at the same time
    against one s3:// store: the leases and conditional entries on the bucket make every
    action run once between them, and both get the same master as a local build."""
    import subprocess
    import sys
    from collections import Counter

    url = f"s3://{bucket}/shared"
    manifests = [_project(tmp_path / name, progressive_source) for name in ("a", "b")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COORDINATOR, str(m), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RESTORO_CACHE_DIR": str(tmp_path / f"cache-{i}")},
        )
        for i, m in enumerate(manifests)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    actions = [
        e for out, _ in outs for e in map(json.loads, out.splitlines()) if e["event"] == "action"
    ]
    ran = Counter(e["id"] for e in actions if e["status"] == "executed")
    assert len(ran) == TOTAL and set(ran.values()) == {1}  # every action once, in one of them
    assert Counter(e["id"] for e in actions) == Counter({i: 2 for i in ran})  # both finished
    assert _master(manifests[0]) == _master(manifests[1]) == _master(local_project)
    keys = _keys(bucket, "shared/")
    assert sum(k.startswith("shared/ac/") for k in keys) == TOTAL
    assert not [k for k in keys if "/locks/leases/" in k]  # every lease released

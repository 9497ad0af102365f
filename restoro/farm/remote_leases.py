"""Action leases on an object store: the same contract as the lease files of a local store.

A lease is the object ``locks/leases/<key>`` holding the same JSON as a lease file. Every change
is a conditional request, so two claimants can never both win:

* claim: create with ``If-None-Match: *`` (fails when anyone holds it);
* heartbeat: rewrite with ``If-Match`` on the ETag this holder wrote last (fails once the lease
  was taken over; the holder then stops beating);
* takeover of an expired lease: rewrite with ``If-Match`` on the ETag that was read and judged
  expired: of several claimants that judged it so, exactly one write succeeds;
* release: delete with ``If-Match`` on our ETag, so a lease taken over is never deleted by its
  presumed-dead former holder.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import TYPE_CHECKING

from restoro.engine.leases import DEFAULT_TTL, HOST, HeldLease, LeaseInfo, hold

if TYPE_CHECKING:
    from restoro.farm.remote_objects import ObjectStore


def _body(info: LeaseInfo) -> bytes:
    return json.dumps(info.__dict__).encode("utf-8")


def _parse(data: bytes, modified: float) -> LeaseInfo:
    """The lease in ``data``; a damaged one is held by an unknown owner for ``DEFAULT_TTL``."""
    try:
        return LeaseInfo(**json.loads(data))
    except (ValueError, TypeError):
        return LeaseInfo(
            pid=0, host="?", token="?", heartbeat=modified, expiry=modified + DEFAULT_TTL
        )


class ObjectLease(HeldLease):
    """A lease held on the object store; ``etag`` names the version this holder wrote."""

    def __init__(self, leases: ObjectLeases, rel: str, info: LeaseInfo, ttl: float, etag: str):
        super().__init__(info, ttl)
        self.leases = leases
        self.rel = rel
        self.etag = etag
        self.lost = False

    def _refresh(self) -> None:
        if self.lost:
            return
        now = time.time()
        self.info.heartbeat, self.info.expiry = now, now + self.ttl
        etag = self.leases.remote.put(self.rel, _body(self.info), if_match=self.etag)
        if etag is None:
            self.lost = True  # taken over (we were presumed dead); commits stay idempotent
        else:
            self.etag = etag

    def _drop(self) -> None:
        if not self.lost:
            self.leases.remote.delete(self.rel, if_match=self.etag)


class ObjectLeases:
    """The lease backend of one object store (``restoro.engine.leases.LeaseBackend``)."""

    def __init__(self, remote: ObjectStore) -> None:
        self.remote = remote

    def read(self, key: str) -> tuple[LeaseInfo, str] | None:
        got = self.remote.get(f"locks/leases/{key}")
        if got is None:
            return None
        data, etag, modified = got
        return _parse(data, modified), etag

    def try_claim(
        self, key: str, *, ttl: float = DEFAULT_TTL, owner: str = ""
    ) -> tuple[HeldLease | None, LeaseInfo | None, bool]:
        """Try once: ``(lease, None, took_over)`` when claimed, ``(None, holder, False)`` if not."""
        rel = f"locks/leases/{key}"
        holder: LeaseInfo | None = None
        for _ in range(4):
            now = time.time()
            info = LeaseInfo(os.getpid(), HOST, uuid.uuid4().hex, now, now + ttl, owner)
            etag = self.remote.put(rel, _body(info), if_none_match=True)
            if etag is not None:
                return hold(ObjectLease(self, rel, info, ttl, etag)), None, False
            current = self.read(key)
            if current is None:
                continue  # released meanwhile: claim again
            holder, seen = current
            if not holder.expired():
                return None, holder, False
            etag = self.remote.put(rel, _body(info), if_match=seen)
            if etag is not None:
                return hold(ObjectLease(self, rel, info, ttl, etag)), None, True
            # Another claimant took it over (or it was released) first: look again.
        return None, holder, False

"""MigrationLock: one runner (or one Cloud Run job execution) at a time, with a lease and a heartbeat.

The lock is the document `_migrations/_lock`. Time is the server's: a lease has expired when the
snapshot's read time is more than `lease_seconds` after the lock's last update (the heartbeat), so the
clocks of the machines involved do not matter. Acquire, heartbeat and release are compare-and-swap writes
(cas.py: no transaction, so a runner killed mid-heartbeat leaves no database lock behind), so two runners
racing for an expired lease cannot both win. Tasks of one Cloud Run job execution share the lock
(same `group`); each is listed in `holders`.

The lease protects against a second *command*; exactly-once does not rest on it: every batch a runner
commits also compare-and-swaps its range checkpoint, so even a runner that stalled past its lease and
wakes up cannot apply a batch twice. It stops at its next batch with LockLost.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from google.cloud import firestore

from gcfkit.migrations.cas import compare_and_swap
from gcfkit.migrations.errors import LockHeld, LockLost
from gcfkit.migrations.tracking import COLLECTION


class MigrationLock:
    def __init__(self, client, owner: str, group: str, command: str, lease_seconds: float = 60.0):
        self.client, self.owner, self.group, self.command = client, owner, group, command
        self.lease_seconds = lease_seconds
        self.ref = client.collection(COLLECTION).document("_lock")
        self.took_over: str | None = None  # what an acquire that replaced an expired lease replaced
        self._lost: str | None = None
        self._last_beat = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MigrationLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self._transact(self._acquire)
        self._last_beat = time.monotonic()
        self._thread = threading.Thread(target=self._heartbeat, name="migration-lock-heartbeat", daemon=True)
        self._thread.start()

    def _acquire(self, transaction, snapshot) -> None:
        fresh = {"group": self.group, "holders": [self.owner], "command": self.command,
                 "acquired_at": firestore.SERVER_TIMESTAMP, "heartbeat_at": firestore.SERVER_TIMESTAMP,
                 "lease_seconds": self.lease_seconds}
        if not snapshot.exists:
            transaction.create(self.ref, fresh)
            return
        lock = snapshot.to_dict()
        if lock.get("group") == self.group:
            transaction.update(self.ref, {"holders": firestore.ArrayUnion([self.owner]),
                                          "heartbeat_at": firestore.SERVER_TIMESTAMP})
            return
        silent = (snapshot.read_time - snapshot.update_time).total_seconds()
        lease = float(lock.get("lease_seconds", self.lease_seconds))
        if silent <= lease:
            raise LockHeld(
                f"migrations are locked by {', '.join(lock.get('holders', [])) or lock.get('group')} "
                f"(running `{lock.get('command', '?')}`) since {_when(lock.get('acquired_at'))}; last heartbeat "
                f"{silent:.0f}s ago, lease {lease:.0f}s. Wait for it to finish (`status` shows its progress); if that "
                f"runner is dead, its lease expires in {lease - silent:.0f}s and the next run takes over and resumes.")
        self.took_over = (f"took over the lock of {', '.join(lock.get('holders', []))} (`{lock.get('command')}`, "
                          f"silent for {silent:.0f}s > lease {lease:.0f}s); its work resumes from the checkpoints")
        transaction.set(self.ref, fresh)

    def check(self) -> None:
        """Raise LockLost if this runner can no longer be sure it holds the lock. Called before every commit of a
        batch (steps.py) and of a migration's record (engine.py)."""
        if self._lost:
            raise LockLost(self._lost)
        if time.monotonic() - self._last_beat > self.lease_seconds:
            raise LockLost(f"{self.owner}: no successful heartbeat for more than the {self.lease_seconds:.0f}s lease, "
                           "so another runner may have taken over; stopped before writing again. Rerun to resume.")

    def _heartbeat(self) -> None:
        interval = max(self.lease_seconds / 4, 0.05)
        while not self._stop.wait(interval):
            try:
                self._transact(self._beat)
            except LockLost as exc:
                self._lost = str(exc)
                return
            except Exception:  # a transient error: check() turns a long enough silence into LockLost
                continue
            self._last_beat = time.monotonic()

    def _beat(self, transaction, snapshot) -> None:
        lock = snapshot.to_dict() if snapshot.exists else {}
        if lock.get("group") != self.group or self.owner not in lock.get("holders", []):
            holders = ", ".join(lock.get("holders") or [])
            raise LockLost(f"{self.owner}: the migration lock was taken over "
                           f"{f'by {holders}' if holders else 'and released by another runner'} (this runner was "
                           "silent longer than its lease); stopped before writing again. Nothing is lost: the "
                           "other runner resumes from the checkpoints.")
        transaction.update(self.ref, {"heartbeat_at": firestore.SERVER_TIMESTAMP})

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._lost:
            return
        self._transact(self._release)

    def _release(self, transaction, snapshot) -> None:
        lock = snapshot.to_dict() if snapshot.exists else {}
        if lock.get("group") != self.group:
            return
        holders = [h for h in lock.get("holders", []) if h != self.owner]
        if holders:
            transaction.update(self.ref, {"holders": holders})
        else:
            transaction.delete(self.ref)

    def _transact(self, body) -> None:
        compare_and_swap(self.ref, body)


def read_lock(client) -> dict | None:
    """The current lock (for status and plans), with `silent_seconds`, or None."""
    snapshot = client.collection(COLLECTION).document("_lock").get()
    if not snapshot.exists:
        return None
    return {**snapshot.to_dict(), "silent_seconds": (snapshot.read_time - snapshot.update_time).total_seconds()}


def _when(value) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if isinstance(value, dt.datetime) else "?"

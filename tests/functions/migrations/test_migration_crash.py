"""Crashes, concurrent runners and Cloud Run job tasks, with real processes on the real emulator.

The migration in these tests is deliberately *not* idempotent (n += 1): a document migrated twice shows
n == 2, so "every document has n == 1" proves exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time

import pytest
from gcfkit.migrations import LockHeld, LockLost, MigrationLock
from google.cloud.firestore_v1.base_query import FieldFilter
from migration_helpers import BUMP, BUMPED_ONCE, cli, engine, put, spawn

pytestmark = [pytest.mark.firestore, pytest.mark.slow]
LEASE = 1.0


def bumped(client) -> int:
    return int(client.collection("items").where(filter=FieldFilter("n", "==", 1)).count().get()[0][0].value)


def counts(client) -> dict[int, int]:
    found: dict[int, int] = {}
    for snapshot in client.collection("items").select(["n"]).stream():
        found[snapshot.get("n")] = found.get(snapshot.get("n"), 0) + 1
    return found


def test_killed_at_ten_random_points_then_rerun_every_document_is_migrated_exactly_once(firestore, revisions):
    total = 3000
    put(firestore, "items", total)
    revisions.add("0001", "bump", BUMP)
    env = {"GCFKIT_MIGRATION_LEASE_SECONDS": str(LEASE), "GCFKIT_MIGRATION_PAGE_SIZE": "150",
           "GCFKIT_MIGRATION_MIN_RANGE_DOCS": "500", "GCFKIT_MIGRATION_WORKERS": "3"}
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    kills, exited = [], []
    for _ in range(25):  # ten kills must land; a runner that ends on its own is recorded, not counted
        if len(kills) == 10:
            break
        done = bumped(firestore)
        share = max(1, (total - done) // (11 - len(kills)))  # spread the kills left over the work left
        target = min(total, done + rnd.randrange(1, share + 1))
        runner = spawn("--dir", str(revisions.directory), "up", env=env)
        while runner.poll() is None and bumped(firestore) < target:
            time.sleep(0.01)
        time.sleep(rnd.uniform(0, 0.05))  # anywhere in a batch's read, transform or commit
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            kills.append(bumped(firestore))
        _, stderr = runner.communicate()
        if runner.returncode >= 0:
            exited.append((runner.returncode, counts(firestore), stderr[-600:]))
        time.sleep(LEASE + 0.3)  # the dead runner's lease expires; the next run takes it over
    assert len(kills) >= 10, f"only {len(kills)} kills landed mid-run (seed {seed}); runners that ended: {exited}"
    assert all(code == 0 for code, _, _ in exited), f"a runner failed on its own (seed {seed}): {exited}"

    final = cli("--dir", str(revisions.directory), "up", env=env)
    assert final.returncode == 0, final.stderr
    assert counts(firestore) == {1: total}, f"killed at {kills} documents (seed {seed})"
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["attempt"], record["documents_touched"]) == ("applied", 1, total)
    checkpoints = [c.to_dict() for c in firestore.collection("_migrations/0001/checkpoints").stream()]
    assert all(c["done"] for c in checkpoints)
    assert sum(c["read"] for c in checkpoints) == sum(c["updated"] for c in checkpoints) == total
    assert not firestore.document("_migrations/_lock").get().exists


def test_a_second_runner_fails_fast_naming_the_holder(firestore, revisions):
    put(firestore, "items", 1200)
    revisions.add("0001", "slow", '''
        import time

        def up(op):
            def bump(doc):
                time.sleep(0.003)
                doc.data["n"] += 1
            op.transform("items", bump)
        ''', BUMPED_ONCE)
    first = spawn("--dir", str(revisions.directory), "up")
    while not firestore.document("_migrations/_lock").get().exists:
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    started = time.monotonic()
    second = cli("--dir", str(revisions.directory), "up")
    assert second.returncode == 3
    assert f"migrations are locked by {socket.gethostname()}:{first.pid} (running `up`) since " in second.stderr
    assert "if that runner is dead, its lease expires in" in second.stderr
    assert time.monotonic() - started < 15, "it does not wait for the holder"
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert counts(firestore) == {1: 1200}


class PausableLock(MigrationLock):
    """A MigrationLock whose heartbeat can be paused mid-run, as in a process that is stopped in a debugger or
    swapped out: the thread stays alive and beats again when resumed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.running = threading.Event()
        self.running.set()

    def _transact(self, body) -> None:
        if threading.current_thread() is self._thread:
            self.running.wait()
        super()._transact(body)


def test_a_stalled_holder_whose_lease_was_taken_over_learns_it_from_its_own_heartbeat(firestore):
    stalled = PausableLock(firestore, "host-a:101", "run-a", "up", lease_seconds=LEASE)
    stalled.acquire()
    stalled.running.clear()  # its next heartbeat waits
    other = MigrationLock(firestore, "host-b:202", "run-b", "up", lease_seconds=LEASE)
    with pytest.raises(LockHeld, match=r"locked by host-a:101 \(running `up`\)"):
        other.acquire()
    time.sleep(LEASE + 0.3)
    other.acquire()
    assert other.took_over is not None and other.took_over.startswith("took over the lock of host-a:101")

    stalled.running.set()  # it wakes up: its heartbeat reads the lock and finds host-b:202 there
    stalled._thread.join(timeout=10)
    assert not stalled._thread.is_alive(), "the heartbeat stopped"
    with pytest.raises(LockLost, match=r"host-a:101: the migration lock was taken over by host-b:202 \(this runner "
                                       r"was silent longer than its lease\); stopped before writing again"):
        stalled.check()
    stalled.release()
    lock = firestore.document("_migrations/_lock").get().to_dict()
    assert lock["holders"] == ["host-b:202"], "the stalled runner's release left the new holder's lock alone"
    other.release()
    assert not firestore.document("_migrations/_lock").get().exists


def test_a_holder_without_a_heartbeat_for_a_lease_stops_on_its_own(firestore):
    silent = MigrationLock(firestore, "host-a:101", "run-a", "up", lease_seconds=LEASE)
    silent.acquire()
    silent._stop.set()  # no heartbeat at all (e.g. every beat failed): nothing tells it about a takeover
    silent._thread.join()
    time.sleep(LEASE + 0.3)
    with pytest.raises(LockLost, match="no successful heartbeat for more than the 1s lease, so another runner may "
                                       "have taken over; stopped before writing again"):
        silent.check()


def test_two_runners_racing_for_an_expired_lease_exactly_one_wins(firestore):
    dead = MigrationLock(firestore, "host-a:101", "run-a", "up", lease_seconds=LEASE)
    dead.acquire()
    dead._stop.set()
    dead._thread.join()
    time.sleep(LEASE + 0.3)
    both_saw_it_expired = threading.Barrier(2)

    class Racing(MigrationLock):
        def _acquire(self, change, snapshot) -> None:
            if not getattr(self, "raced", False):
                self.raced = True
                both_saw_it_expired.wait(timeout=10)  # neither writes before both decided to take over
            super()._acquire(change, snapshot)

    runners = [Racing(firestore, f"host-{n}:30{n}", f"run-{n}", "up", lease_seconds=10) for n in (1, 2)]
    won, refused, errors = [], [], []

    def race(runner: MigrationLock) -> None:
        try:
            runner.acquire()
            won.append(runner)
        except LockHeld as exc:
            refused.append((runner, str(exc)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        assert len(won) == 1 and len(refused) == 1, "exactly one takes the expired lease over"
        (winner,), ((loser, message),) = won, refused
        assert loser is not winner and winner.took_over.startswith("took over the lock of host-a:101")
        assert message.startswith(f"migrations are locked by {winner.owner} (running `up`)")
        assert firestore.document("_migrations/_lock").get().get("holders") == [winner.owner]
    finally:
        for runner in won:
            runner.release()
    assert not firestore.document("_migrations/_lock").get().exists


def test_cloud_run_job_tasks_share_the_ranges_and_finish_the_ranges_of_tasks_not_started(firestore, revisions):
    put(firestore, "items", 2400)
    # 3 ms a document: one task alone takes seconds, so the other has started (even on a loaded machine)
    # before the first could have done every range by itself.
    revisions.add("0001", "bump", '''
        import time

        def up(op):
            def bump(doc):
                time.sleep(0.003)
                doc.data["n"] = doc.data.get("n", 0) + 1
            op.transform("items", bump, description="n += 1")
        ''', BUMPED_ONCE)
    plan = revisions.directory.parent / "migration-plan.json"
    assert cli("--dir", str(revisions.directory), "plan", "--out", str(plan)).returncode == 0
    # As the job runs: every task applies the reviewed plan (GCFKIT_MIGRATION_PLAN), each a share of it.
    job = {"CLOUD_RUN_EXECUTION": "gcf-kit-migrations-x7k2p", "CLOUD_RUN_TASK_COUNT": "3",
           "GCFKIT_MIGRATION_MIN_RANGE_DOCS": "200", "GCFKIT_MIGRATION_WORKERS": "2",
           "GCFKIT_MIGRATION_PAGE_SIZE": "100", "GCFKIT_MIGRATION_PLAN": str(plan)}
    # parallelism 2: tasks 0 and 1 run now, task 2 only after them, so they must do task 2's share too
    running = [spawn("--dir", str(revisions.directory), "up", env={**job, "CLOUD_RUN_TASK_INDEX": str(i)})
               for i in (0, 1)]
    for task in running:
        _, err = task.communicate(timeout=180)
        assert task.returncode == 0, err
    late = cli("--dir", str(revisions.directory), "up", env={**job, "CLOUD_RUN_TASK_INDEX": "2"})
    assert late.returncode == 0 and "nothing to apply" in late.stderr
    assert counts(firestore) == {1: 2400}
    owners = {c.get("owner") for c in firestore.collection("_migrations/0001/checkpoints").stream()}
    assert {owner.rsplit(" task ", 1)[-1] for owner in owners} == {"0/3", "1/3"}, "both tasks did a share"
    record = firestore.document("_migrations/0001").get().to_dict()
    assert (record["status"], record["documents_touched"]) == ("applied", 2400)
    assert not firestore.document("_migrations/_lock").get().exists


def test_a_runner_whose_lease_was_taken_over_stops_before_its_next_commit(firestore, revisions, monkeypatch):
    """One range, one 5,000-document page: the lease must be checked before every batch, not every page."""
    put(firestore, "items", 1500)
    revisions.add("0001", "bump", '''
        def up(op):
            def bump(doc):
                stall(doc)
                doc.data["n"] += 1
            op.transform("items", bump)
        ''', BUMPED_ONCE)
    held: list[MigrationLock] = []
    acquire = MigrationLock.acquire
    monkeypatch.setattr(MigrationLock, "acquire", lambda lock: (held.append(lock), acquire(lock))[1])
    others: list[MigrationLock] = []

    def stall(doc):
        """Mid-way through the second batch this runner stalls past its lease and another runner takes over."""
        if doc.id == "d00600" and not others:
            held[0]._stop.set()  # its heartbeat stops too, as in a process that is swapped out or paused
            held[0]._thread.join()
            time.sleep(LEASE + 0.3)
            others.append(MigrationLock(firestore, "host-b:202", "run-b", "up", lease_seconds=LEASE))
            others[0].acquire()

    runner = engine(firestore, revisions, lease_seconds=LEASE, workers=1, page_size=5000, min_range_docs=10_000)
    runner.revisions[0].up.__globals__["stall"] = stall
    try:
        with pytest.raises(LockLost, match="stopped before writing again"):
            runner.up()
    finally:
        for other in others:
            other.release()
    assert others and others[0].took_over, "the other runner took the lock over"
    assert counts(firestore) == {1: 499, 0: 1001}, "only the batch committed before the takeover"


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_runner_whose_lease_was_taken_over_leaves_the_record_alone_when_its_step_then_fails(
        firestore, revisions, monkeypatch, direction):
    """A stalled runner wakes up after a takeover and its transform raises before its next commit: it must not
    mark the attempt failed, which the runner that took over is resuming (that one would then stop, told another
    task had failed it)."""
    put(firestore, "items", 20)
    revisions.add("0001", "bump", '''
        def up(op):
            def bump(doc):
                stall(doc, "up")
                doc.data["n"] += 1
            op.transform("items", bump)


        def down(op):
            def unbump(doc):
                stall(doc, "down")
                doc.data["n"] -= 1
            op.transform("items", unbump)


        def validate(op):
            pass
        ''')
    held: list[MigrationLock] = []
    acquire = MigrationLock.acquire
    monkeypatch.setattr(MigrationLock, "acquire", lambda lock: (held.append(lock), acquire(lock))[1])
    others: list[MigrationLock] = []

    def stall(doc, running):
        if running == direction and doc.id == "d00010":
            held[-1]._stop.set()  # paused past its lease, heartbeat included; another runner takes over
            held[-1]._thread.join()
            time.sleep(LEASE + 0.3)
            others.append(MigrationLock(firestore, "host-b:202", "run-b", direction, lease_seconds=LEASE))
            others[0].acquire()
            raise ValueError("the stalled runner's transform fails after the takeover")

    runner = engine(firestore, revisions, lease_seconds=LEASE, workers=1)
    runner.revisions[0].up.__globals__["stall"] = stall
    if direction == "down":
        runner.up()
    try:
        with pytest.raises(LockLost, match="stopped before writing again"):
            runner.up() if direction == "up" else runner.down(to="0000")
    finally:
        for other in others:
            other.release()
    assert others and others[0].took_over
    record = firestore.document("_migrations/0001").get().to_dict()
    expected = ("applying", 1) if direction == "up" else ("reverting", 2)
    assert (record["status"], record["attempt"], record["error"]) == (*expected, None), \
        "left as the runner that took over resumes it"

"""One utility call ("step") of a migration: split the source into document-id ranges, run the ranges on
parallel workers, and write each batch of changes atomically *with* its range checkpoint.

Exactly once, even after kill -9: a batch (<= 499 document writes + the checkpoint "migrated up to id X")
is one Firestore commit, so either both land or neither does; a rerun continues after X. The checkpoint
write carries a last-update-time precondition (compare-and-swap), so two workers that ever process the
same range (a stalled runner waking up after a takeover, sibling tasks of a Cloud Run job finishing each
other's ranges) cannot both commit the same batch; the loser re-reads the checkpoint and moves on. Every
document write carries its own last-update-time precondition, so a document the application changed
after it was read is re-read and re-transformed instead of overwritten.

A step is identified by its fingerprint (utility and description, source, filter fields and operators,
function name) and how many steps with that fingerprint came before it in the run, not by its position: a
resumed run whose up skips a step (a read-only branch) still finds each step's own split points and
checkpoints. Filter values are not part of it: one computed at run time (a DocumentReference, a
datetime.now() cutoff) differs in every process. A resumed run that reaches a step its attempt never
recorded stops (the steps changed) rather than start a step over, while a recorded step it has not reached
is unfinished, or finished on the same source (collection or group, filter fields): a renamed step.

Batched commits, not BulkWriter: BulkWriter writes each document on its own, so no checkpoint can be
atomic with the writes it describes. The 500/50/5 ramp-up BulkWriter applies is applied here (RampUp).
A batch holds at most 499 document writes and batch_bytes() of them (9.5 MB; 3.5 MB on the emulator). The
commits are built in commit.py.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from google.api_core import exceptions as gexc

from gcfkit.migrations import commit
from gcfkit.migrations import source as sources
from gcfkit.migrations.documents import Change, Document, Write, apply
from gcfkit.migrations.dryrun import DELETED
from gcfkit.migrations.errors import DocumentFailed, MigrationError, StepsChanged
from gcfkit.migrations.progress import Progress
from gcfkit.migrations.runtime import BATCH_LIMIT, Run, StepReport, batch_bytes
from gcfkit.migrations.source import Source
from gcfkit.migrations.tracking import records_ref

# Outcomes after which the commit may or may not have landed, or lost a race: re-read the checkpoint to know.
_UNCERTAIN = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound, gexc.Aborted, gexc.DeadlineExceeded,
              gexc.ServiceUnavailable, gexc.InternalServerError)
MAX_CONFLICTS = 20


@dataclass(frozen=True)
class Checkpoint:
    last: str | None = None
    done: bool = False
    read: int = 0
    updated: int = 0
    deleted: int = 0
    created: int = 0
    token: str = ""
    owner: str = ""  # the process that wrote it, and its lock group (the tasks of one job share a group)
    group: str = ""
    update_time: Any = None  # of the checkpoint document itself: the compare-and-swap
    silent_seconds: float = 0.0  # since its last write, in server time

    @classmethod
    def read_from(cls, ref) -> Checkpoint:
        snapshot = ref.get()
        if not snapshot.exists:
            return cls()
        data = snapshot.to_dict()
        return cls(last=data.get("last"), done=data.get("done", False), read=data.get("read", 0),
                   updated=data.get("updated", 0), deleted=data.get("deleted", 0), created=data.get("created", 0),
                   token=data.get("token", ""), owner=data.get("owner", ""), group=data.get("group", ""),
                   update_time=snapshot.update_time,
                   silent_seconds=(snapshot.read_time - snapshot.update_time).total_seconds())


def run_step(run: Run, source: Source, fn: Callable, description: str) -> StepReport:
    step = run.next_step(f"{description} ({source.describe()})", _fingerprint(source, fn, description))
    started = time.perf_counter()
    total = sources.count(run.reader, source)
    label = f"{run.revision.version} {run.direction} step {step.number}"
    if run.writes:
        recorded = _record_step(run, step, source, total)
        bounds = _bounds(recorded.splits)
        step.split, step.ranges = recorded.split, len(bounds)
        _run_real(run, step, source, fn, bounds, recorded.checkpoints, total, label)
    else:
        # A plan of a migration that stopped part-way dry-runs what `up` would resume: the recorded ranges,
        # after their checkpoints. Anything else is split afresh.
        recorded = _recorded_step(run, run.reader, step, source) if run.attempt else None
        if recorded is None:
            points, step.split = sources.split_points(run.reader, source, _pieces(run, total), total)
            bounds = _bounds(points)
            progress = [Checkpoint()] * len(bounds)
        else:
            bounds = _bounds(recorded.splits)
            step.split = f"{recorded.split}; resumed from the checkpoints of attempt {run.attempt}"
            progress = [Checkpoint.read_from(ref)
                        for ref in _checkpoint_refs(run, run.reader, recorded.checkpoints, len(bounds))]
        step.ranges = len(bounds)
        _run_dry(run, step, source, fn, bounds, progress, total, label)
    step.seconds = time.perf_counter() - started
    return step


def _fingerprint(source: Source, fn: Callable, description: str) -> str:
    # Filter *values* are left out: a value computed at run time (a DocumentReference, whose repr holds a memory
    # address; a datetime.now() cutoff) differs in every process, and a resumed run or a sibling task must find
    # the same step. The field and operator identify the filter.
    function = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return json.dumps([description, *_source_key(source), function])


def _source_key(source: Source) -> list:
    """What a step reads, without filter values: collection, group, filter fields and operators."""
    return [source.collection, source.group, [[f, op] for f, op, _ in source.where]]


def _without_values(description: str, source: Source) -> re.Pattern:
    """Matches a step description (`{description} ({source.describe()})`) whatever its filter values are."""
    return re.compile(re.escape(f"{description} (") + _source_pattern(source) + re.escape(")"), re.DOTALL)


def _source_pattern(source: Source) -> str:
    """A regex of `source.describe()` whatever its filter values are."""
    text = f"collection group {source.collection}" if source.group else source.collection
    return re.escape(text) + "".join(re.escape(f" where {f} {op} ") + ".*?" for f, op, _ in source.where)


def _same_source(found: dict, source: Source) -> bool:
    """Did the recorded step `found` read what `source` reads (filter values aside)?"""
    if "source_key" in found:
        return found["source_key"] == json.dumps(_source_key(source))
    return re.fullmatch(_source_pattern(source), found.get("source") or "", re.DOTALL) is not None


def _bounds(splits: list[str]) -> list[tuple[str | None, str | None]]:
    return list(zip([None, *splits], [*splits, None], strict=True))


def _pieces(run: Run, total: int) -> int:
    s = run.settings
    # Twice as many ranges as workers evens out uneven ranges; more would only add queries.
    return max(1, min(total // max(1, s.min_range_docs), s.workers * s.task_count * 2))


@dataclass(frozen=True)
class _Recorded:
    """A step as its attempt recorded it: split points, how they were found, and its checkpoints' id prefix."""

    splits: list[str]
    split: str
    checkpoints: str  # range i's checkpoint is checkpoints/{this}-{i:04d}


def _record_step(run: Run, step: StepReport, source: Source, total: int) -> _Recorded:
    """The recorded split points of `step`, recording them first if this attempt has not reached it yet.

    The first runner to reach a step records its split points; every later runner (a resumed run, the other
    tasks of a job) uses those, so range i always means the same ids and its checkpoint stays valid."""
    recorded = _recorded_step(run, run.client, step, source)
    if recorded is not None:
        return recorded
    _refuse_skipping_unfinished(run, step, source)
    points, how = sources.split_points(run.client, source, _pieces(run, total), total)
    ref = _migration_ref(run, run.client).collection("steps").document(f"{run.step_prefix}-{step.key}")
    with contextlib.suppress(gexc.AlreadyExists):  # a sibling task recorded it first: use theirs
        ref.create({"description": step.description, "fingerprint": step.fingerprint, "number": step.number,
                    "splits": points, "split": how, "source": source.describe(),
                    "source_key": json.dumps(_source_key(source))})
    recorded = _recorded_step(run, run.client, step, source)
    assert recorded is not None
    return recorded


def _recorded_step(run: Run, client, step: StepReport, source: Source) -> _Recorded | None:
    steps = _migration_ref(run, client).collection("steps")
    snapshot = steps.document(f"{run.step_prefix}-{step.key}").get()
    if snapshot.exists:
        found = snapshot.to_dict()
        if found.get("fingerprint") != step.fingerprint:  # a hash collision: never resume someone else's progress
            raise MigrationError(f"migration {run.revision.version}: step {step.number} ({step.description}) and the "
                                 f"recorded step {snapshot.id} ({found.get('description')}) share a key; give one of "
                                 "them another description")
    else:
        # Attempts started by an engine that named steps by position ({attempt}-{direction}-{NNN}).
        snapshot = steps.document(f"{run.step_prefix}-{step.number:03d}").get()
        if not snapshot.exists:
            return None
        found = snapshot.to_dict()
        # Filter values are not compared: one computed at run time differs in every process (see _fingerprint).
        base = step.description.removesuffix(f" ({source.describe()})")
        if not _without_values(base, source).fullmatch(found.get("description") or ""):
            raise MigrationError(
                f"migration {run.revision.version}: attempt {run.attempt} was started by an earlier version of the "
                f"engine, which identified steps by position: its step {step.number} was {found.get('description')!r}"
                f", this run's is {step.description!r}. Resume it with the steps in the same order (the same file "
                "and data it branches on), or revert it and start a new attempt.")
    run.claimed.add(snapshot.id)
    return _Recorded(list(found["splits"]), found["split"], snapshot.id)


def _refuse_skipping_unfinished(run: Run, step: StepReport, source: Source) -> None:
    """A step this attempt never recorded may start only once every unfinished recorded step has been reached
    (otherwise the steps of up changed since the run this one resumes, and a changed step would start over), and
    only if no finished recorded step this run has not reached read the same documents (otherwise that step was
    renamed: a new description or function name gives it a new identity, and it would run over them again)."""
    renamed = []
    recorded = [snapshot for snapshot in _migration_ref(run, run.client).collection("steps").stream()
                if snapshot.id.startswith(f"{run.step_prefix}-") and snapshot.id not in run.claimed]
    # This very step may have been recorded by a sibling task of a job since this run found it unrecorded, and
    # that sibling may have gone on to record the steps after it: those are steps this run has yet to reach.
    own = next((s for s in recorded if s.id == f"{run.step_prefix}-{step.key}"), None)
    for snapshot in recorded:
        if own is not None and snapshot.create_time >= own.create_time:
            continue
        found = snapshot.to_dict()
        if all(Checkpoint.read_from(ref).done
               for ref in _checkpoint_refs(run, run.client, snapshot.id, len(found.get("splits", [])) + 1)):
            if _same_source(found, source):
                renamed.append(found.get("description"))
            continue  # finished on other documents: a branch that skips it now is harmless
        raise StepsChanged(
            f"migration {run.revision.version}: step {step.number} of this run ({step.description}) is not a step "
            f"attempt {run.attempt} recorded, while its step {found.get('description')!r} stopped part-way and this "
            "run has not reached it. The steps of this migration changed since the run it resumes (its file, or the "
            "data its up branches on), so continuing could migrate documents twice; nothing of this step was written. "
            "Restore what changed so up calls the same utilities (same descriptions, collections, filter fields and "
            "function names) in the same order, then apply again.")
    if renamed:
        raise StepsChanged(
            f"migration {run.revision.version}: step {step.number} of this run ({step.description}) is not a step "
            f"attempt {run.attempt} recorded, but that attempt already finished a step on the same documents that "
            f"this run has not reached: {', '.join(repr(d) for d in renamed)}. A step is identified by its "
            "description, collection, filter fields and function name, so if that step was renamed (an edited "
            "description or function name), running it again would migrate every document a second time; nothing "
            "of this step was written. If it is the same step, restore its description and function name as they "
            "were when it ran (accept the restored file with restamp if its checksum changed), then apply again. If "
            "it is new work on those documents, put it in a new migration; or revert this one (`down`) and apply "
            "it again, which starts a new attempt that runs every step.")


def _migration_ref(run: Run, client):
    return records_ref(client).document(run.revision.version)


def _checkpoint_refs(run: Run, client, prefix: str, ranges: int) -> list:
    """Range i's checkpoint of a recorded step: _migrations/{version}/checkpoints/{prefix}-{i:04d}."""
    checkpoints = _migration_ref(run, client).collection("checkpoints")
    return [checkpoints.document(f"{prefix}-{i:04d}") for i in range(ranges)]


@contextmanager
def _workers(run: Run, count: int) -> Iterator[ThreadPoolExecutor]:
    """The step's thread pool. If the step fails (a document) or is interrupted (Ctrl-C), the other workers
    stop at their next batch instead of finishing every queued range; what they committed stays committed."""
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix=f"migrate-{run.revision.version}")
    try:
        yield pool
    except BaseException:
        run.cancelled.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# -- real runs -------------------------------------------------------------------------------------------------

def _run_real(run: Run, step: StepReport, source: Source, fn: Callable, bounds, prefix: str, total: int,
              label: str) -> None:
    refs = _checkpoint_refs(run, run.client, prefix, len(bounds))
    s = run.settings
    # This task's share first (range i % task_count == task_index), then the rest: a task that finishes early
    # completes ranges nobody started (a job with parallelism < task count) or whose task went quiet.
    pending = sorted(range(len(bounds)), key=lambda i: (i % s.task_count != s.task_index, i))
    initial = sum(Checkpoint.read_from(refs[i]).read for i in pending)
    with Progress(label, total, initial=min(initial, total), enabled=s.progress) as bar, \
            _workers(run, min(s.workers, len(bounds))) as pool:
        while pending:
            workers = {i: pool.submit(_RangeWorker(run, source, fn, refs[i], *bounds[i], bar)) for i in pending}
            pending = [i for i, worker in workers.items() if not worker.result()]
            if pending:  # sibling tasks are migrating these; look again (and take over any that go quiet)
                time.sleep(0.5)
    finals = [Checkpoint.read_from(ref) for ref in refs]
    step.read = sum(c.read for c in finals)
    step.updated, step.deleted = sum(c.updated for c in finals), sum(c.deleted for c in finals)
    step.created = sum(c.created for c in finals)


class _RangeWorker:
    """Migrates one range: pages of up to page_size documents after the checkpoint, streamed and committed in
    batches as they fill, so memory holds one batch whatever the page size."""

    def __init__(self, run: Run, source: Source, fn: Callable, ref, start: str | None, end: str | None, bar):
        self.run, self.source, self.fn, self.ref, self.start, self.end, self.bar = run, source, fn, ref, start, end, bar
        self.checkpoint = Checkpoint.read_from(ref)
        self.conflicts = 0

    def __call__(self) -> bool:
        """Migrate the range to its end. False: a sibling task is migrating it (the caller looks again later)."""
        while not self.checkpoint.done:
            if self._sibling_on_it() or self.run.cancelled.is_set():
                return False
            self._page()
        return True

    def _sibling_on_it(self) -> bool:
        c, s = self.checkpoint, self.run.settings
        # A checkpoint of another lock group was left by a runner that is gone (this one holds the lock now);
        # one of this job's other tasks is trusted until it has been silent for a lease.
        return bool(c.owner) and c.owner != s.owner and c.group == s.group and c.silent_seconds < s.lease_seconds

    def _page(self) -> None:
        """One query after the checkpoint. Returns early, to re-read from the checkpoint, if a batch did not land."""
        client, page_size = self.run.client, self.run.settings.page_size
        query = sources.ordered(client, self.source, start=self.start, end=self.end, after=self.checkpoint.last)
        batch: list[tuple[str, Change | None]] = []
        pbs: list = []
        size = read = 0
        cap = batch_bytes()
        keeps = self.source.keeps if self.source.in_process else None
        for row in sources.rows(client, self.source, query.limit(page_size)):
            read += 1
            # A document a filter applied in process leaves out is read past (the checkpoint moves over it).
            change = _transform(self.run, self.fn, row) if keeps is None or keeps(row.data) else None
            written = [commit.write_pb(client, w) for w in change.writes] if change else []
            count, nbytes = len(written), sum(pb.ByteSize() for pb in written)
            if count > BATCH_LIMIT - 1 or nbytes > cap:
                raise DocumentFailed(
                    f"migration {self.run.revision.version}: {row.path} needs {count} writes of {nbytes:,} bytes; "
                    f"one document's writes must fit in one atomic commit ({BATCH_LIMIT - 1} writes, "
                    f"{cap:,} bytes). Nothing of its batch was written; earlier batches are committed. Write "
                    "fewer or smaller documents per document, or split the work into two migrations.")
            if batch and (len(pbs) + count > BATCH_LIMIT - 1 or size + nbytes > cap):
                if self.run.cancelled.is_set() or not self._flush(batch, pbs, done=False):
                    return
                batch, pbs, size = [], [], 0
            batch.append((row.path, change))
            pbs += written
            size += nbytes
        self._flush(batch, pbs, done=read < page_size)

    def _flush(self, batch: list[tuple[str, Change | None]], pbs: list, done: bool) -> bool:
        """Commit `batch` (its writes: `pbs`) with the checkpoint after it. False if it did not land (re-read from
        the checkpoint)."""
        if self.run.lock is not None:
            # Before every commit, not every page: a page holds up to 10 batches, which a runner whose lease
            # was taken over must not commit. (The checkpoint's compare-and-swap keeps even those exactly-once,
            # but the runner that took over owns the run now.)
            self.run.lock.check()
        following = _advance(self.checkpoint, batch, done, self.ref.id)
        try:
            self.checkpoint = _commit(self.run, self.ref, self.checkpoint, following, pbs)
        except _UNCERTAIN:
            latest = Checkpoint.read_from(self.ref)
            if latest.token != following.token:  # a sibling task won this range, or a document changed
                self.conflicts = self._back_off(latest)
                self.checkpoint = latest
                return False
            self.checkpoint = latest  # it landed; the error came after the commit
        self.conflicts = 0
        self.bar.advance(len(batch))
        return True

    def _back_off(self, latest: Checkpoint) -> int:
        if latest.update_time != self.checkpoint.update_time:
            return 0  # another runner advanced this range: __call__ leaves it to that one while it is active
        if self.conflicts + 1 > MAX_CONFLICTS:
            raise MigrationError(
                f"migration {self.run.revision.version}: documents after "
                f"{self.checkpoint.last or self.start or 'the start'} in {self.source.describe()} changed "
                f"{MAX_CONFLICTS} times while being migrated (the application keeps writing them). Rerun when "
                "traffic is lower: it resumes here.")
        time.sleep(min(2.0, 0.05 * 2 ** self.conflicts) * random.uniform(0.5, 1.0))
        return self.conflicts + 1


def _transform(run: Run, fn: Callable, row: sources.Row) -> Change | None:
    def children(path: str) -> list[Document]:
        return [Document(r.path, r.data, children) for r in sources.rows(run.client, Source(path),
                                                                          sources.ordered(run.client, Source(path)))]

    return apply(fn, row.path, row.data, row.update_time, children, run.revision.version)


def _advance(checkpoint: Checkpoint, batch, done: bool, range_id: str) -> Checkpoint:
    kinds = [c.kind for _, c in batch if c]
    writes = [w for _, c in batch if c for w in c.writes[1 if c.kind in ("update", "delete") else 0:]]
    return replace(checkpoint, last=batch[-1][0] if batch else checkpoint.last, done=done,
                   read=checkpoint.read + len(batch), updated=checkpoint.updated + kinds.count("update"),
                   deleted=checkpoint.deleted + kinds.count("delete") + sum(w.kind == "delete" for w in writes),
                   created=checkpoint.created + sum(w.kind == "set" for w in writes),
                   token=f"{range_id}:{uuid.uuid4().hex}")


def _commit(run: Run, ref, current: Checkpoint, following: Checkpoint, writes: list) -> Checkpoint:
    client = run.client
    pbs = list(writes)
    fields = {"last": following.last, "done": following.done, "read": following.read, "updated": following.updated,
              "deleted": following.deleted, "created": following.created, "token": following.token,
              "attempt": run.attempt, "direction": run.direction, "owner": run.settings.owner,
              "group": run.settings.group}
    checkpoint = commit.write_pb(client, Write("update", ref.path, fields, current.update_time))
    if current.update_time is None:  # the range's first checkpoint: only if no sibling task wrote one
        checkpoint.current_document.exists = False
    pbs.append(checkpoint)
    if run.ramp_up is not None:
        run.ramp_up.take(len(pbs))
    return replace(following, update_time=commit.commit(client, pbs))


# -- dry runs --------------------------------------------------------------------------------------------------

def _run_dry(run: Run, step: StepReport, source: Source, fn: Callable, bounds, progress: list[Checkpoint],
             total: int, label: str) -> None:
    seen: set[str] = set()
    lock = threading.Lock()
    step.done_before = sum(c.read for c in progress)

    def one_range(start, end, checkpoint: Checkpoint):
        if checkpoint.done:
            return
        for page in sources.pages(run.reader, source, start=start, end=end, after=checkpoint.last,
                                  page_size=run.settings.page_size):
            if run.cancelled.is_set():
                return
            for row in page:
                with lock:
                    seen.add(row.path)
                _dry_document(run, step, source, fn, row.path, row.data, lock)
            bar.advance(len(page))

    with Progress(label + " (dry run)", max(0, total - step.done_before), enabled=run.settings.progress) as bar, \
            _workers(run, min(run.settings.workers, len(bounds))) as pool:
        for future in [pool.submit(one_range, start, end, c) for (start, end), c in zip(bounds, progress, strict=True)]:
            future.result()
    # Documents an earlier migration of this dry run created (or changed so that they now match the filter).
    for path, _ in list(run.overlay.documents(source)) if run.overlay else []:
        if path not in seen and not _migrated_before(path, bounds, progress):
            _dry_document(run, step, source, fn, path, None, lock)


def _migrated_before(path: str, bounds, progress: list[Checkpoint]) -> bool:
    """Is `path` in the part of its range that the interrupted run being resumed already migrated?"""
    key = path.split("/")
    for (start, end), checkpoint in zip(bounds, progress, strict=True):
        if (start is None or key >= start.split("/")) and (end is None or key < end.split("/")):
            return checkpoint.done or (checkpoint.last is not None and key <= checkpoint.last.split("/"))
    return False


def _dry_document(run: Run, step: StepReport, source: Source, fn: Callable, path: str, data: dict | None,
                  lock: threading.Lock) -> None:
    overlay = run.overlay
    if overlay is not None and path in overlay:
        data = overlay.get(path)
        if data is DELETED or (source.where and not source.matches(data)):
            return
    assert data is not None

    def children(collection_path: str) -> list[Document]:
        return _dry_children(run, collection_path, children)

    change = apply(fn, path, data, None, children, run.revision.version)
    with lock:
        step.read += 1
        if change is None:
            return
        step.updated += change.kind == "update"
        step.deleted += change.kind == "delete"
        for write in change.writes:
            if write.path != path:
                step.created += write.kind == "set"
                step.deleted += write.kind == "delete"
        if len(step.samples) < run.settings.sample_diffs:
            step.samples.append(_sample(change))
    if overlay is not None:
        overlay.record(path, None if change.after is None else _new_data(data, change))
        for write in change.writes:
            if write.path != path:
                overlay.record(write.path, write.fields if write.kind == "set" else DELETED)


def _dry_children(run: Run, collection_path: str, children) -> list[Document]:
    child_source = Source(collection_path)
    found: dict[str, dict] = {}
    for row in sources.rows(run.reader, child_source, sources.ordered(run.reader, child_source)):
        found[row.path] = row.data
    if run.overlay is not None:
        for path in list(found):
            if path in run.overlay:
                found[path] = run.overlay.get(path)
        found.update(dict(run.overlay.documents(child_source)))
    return [Document(p, d, children) for p, d in sorted(found.items()) if d is not DELETED]


def _new_data(before: dict, change: Change) -> dict:
    removed = set(change.before) - set(change.after or {})
    return {**{k: v for k, v in before.items() if k not in removed}, **(change.after or {})}


def _sample(change: Change) -> dict:
    children = [f"{w.kind} {w.path}" for w in change.writes if w.path != change.path]
    return {"path": change.path, "before": _plain(change.before), "after": _plain(change.after),
            **({"children": children[:5] + ([f"... {len(children) - 5} more"] if len(children) > 5 else [])}
               if children else {})}


def _plain(value: Any) -> Any:
    """JSON-friendly copy for plan files (timestamps, references, bytes become text)."""
    return json.loads(json.dumps(value, default=str))

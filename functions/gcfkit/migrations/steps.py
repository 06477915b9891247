"""One utility call ("step") of a migration: split the source into document-id ranges, run the ranges on
parallel workers, and write each batch of changes atomically *with* its range checkpoint.

Exactly once, even after kill -9: a batch (<= 499 document writes + the checkpoint "migrated up to id X")
is one Firestore commit, so either both land or neither does; a rerun continues after X. The checkpoint
write carries a last-update-time precondition (compare-and-swap), so two workers that ever process the
same range (a stalled runner waking up after a takeover, sibling tasks of a Cloud Run job finishing each
other's ranges) cannot both commit the same batch; the loser re-reads the checkpoint and moves on. Every
document write carries its own last-update-time precondition, so a document the application changed
after it was read is re-read and re-transformed instead of overwritten.

Batched commits, not BulkWriter: BulkWriter writes each document on its own, so no checkpoint can be
atomic with the writes it describes. The 500/50/5 ramp-up BulkWriter applies is applied here (RampUp).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from google.api_core import exceptions as gexc

from gcfkit.migrations import source as sources
from gcfkit.migrations.documents import Change, Document, Write, apply
from gcfkit.migrations.dryrun import DELETED
from gcfkit.migrations.errors import DocumentFailed, MigrationError
from gcfkit.migrations.progress import Progress
from gcfkit.migrations.runtime import BATCH_LIMIT, Run, StepReport
from gcfkit.migrations.source import Source
from gcfkit.migrations.tracking import COLLECTION

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
    update_time: Any = None  # of the checkpoint document itself: the compare-and-swap

    @classmethod
    def read_from(cls, ref) -> Checkpoint:
        snapshot = ref.get()
        if not snapshot.exists:
            return cls()
        data = snapshot.to_dict()
        return cls(last=data.get("last"), done=data.get("done", False), read=data.get("read", 0),
                   updated=data.get("updated", 0), deleted=data.get("deleted", 0), created=data.get("created", 0),
                   token=data.get("token", ""), update_time=snapshot.update_time)


def run_step(run: Run, source: Source, fn: Callable, description: str) -> StepReport:
    step = run.next_step(f"{description} ({source.describe()})")
    started = time.perf_counter()
    total = sources.count(run.reader, source)
    splits = _splits(run, step, source, total)
    bounds = list(zip([None, *splits], [*splits, None], strict=True))
    step.ranges = len(bounds)
    label = f"{run.revision.version} {run.direction} step {step.number}"
    if run.writes:
        _run_real(run, step, source, fn, bounds, total, label)
    else:
        _run_dry(run, step, source, fn, bounds, total, label)
    step.seconds = time.perf_counter() - started
    return step


def _splits(run: Run, step: StepReport, source: Source, total: int) -> list[str]:
    s = run.settings
    pieces = max(1, min(total // max(1, s.min_range_docs), s.workers * s.task_count * 4))
    if not run.writes:
        points, step.split = sources.split_points(run.reader, source, pieces, total)
        return points
    # The first runner to reach a step records its split points; every later runner (a resumed run, the
    # other tasks of a job) uses those, so range i always means the same ids and its checkpoint stays valid.
    ref = _migration_ref(run).collection("steps").document(f"{run.step_prefix}-{step.number:03d}")
    snapshot = ref.get()
    if not snapshot.exists:
        points, how = sources.split_points(run.client, source, pieces, total)
        with contextlib.suppress(gexc.AlreadyExists):
            ref.create({"description": step.description, "splits": points, "split": how, "source": source.describe()})
        snapshot = ref.get()
    recorded = snapshot.to_dict()
    step.split = recorded["split"]
    return list(recorded["splits"])


def _migration_ref(run: Run):
    return run.client.collection(COLLECTION).document(run.revision.version)


# -- real runs -------------------------------------------------------------------------------------------------

def _run_real(run: Run, step: StepReport, source: Source, fn: Callable, bounds, total: int, label: str) -> None:
    checkpoints = _migration_ref(run).collection("checkpoints")
    refs = [checkpoints.document(f"{run.step_prefix}-{step.number:03d}-{i:04d}") for i in range(len(bounds))]
    s = run.settings
    # This task's share first (range i % task_count == task_index), then the rest, so a task that finishes
    # early completes ranges of tasks that have not started (a job with parallelism < task count).
    order = sorted(range(len(bounds)), key=lambda i: (i % s.task_count != s.task_index, i))
    initial = sum(Checkpoint.read_from(refs[i]).read for i in order)
    with Progress(label, total, initial=min(initial, total), enabled=s.progress) as bar, \
            ThreadPoolExecutor(max_workers=min(s.workers, len(bounds)), thread_name_prefix="migrate") as pool:
        futures = [pool.submit(_real_range, run, source, fn, refs[i], *bounds[i], bar) for i in order]
        for future in futures:
            future.result()
    finals = [Checkpoint.read_from(ref) for ref in refs]
    step.read = sum(c.read for c in finals)
    step.updated, step.deleted = sum(c.updated for c in finals), sum(c.deleted for c in finals)
    step.created = sum(c.created for c in finals)


def _real_range(run: Run, source: Source, fn: Callable, ref, start: str | None, end: str | None, bar) -> None:
    checkpoint = Checkpoint.read_from(ref)
    conflicts = 0
    while not checkpoint.done:
        if run.lock is not None:
            run.lock.check()
        page = next(sources.pages(run.client, source, start=start, end=end, after=checkpoint.last,
                                  page_size=run.settings.page_size), [])
        exhausted = len(page) < run.settings.page_size
        batches = _pack([(snap.reference.path, _transform(run, fn, snap)) for snap in page], run.revision.version)
        for i, batch in enumerate(batches or [[]]):
            following = _advance(checkpoint, batch, exhausted and i == len(batches or [[]]) - 1, ref.id)
            try:
                checkpoint = _commit(run, ref, checkpoint, following, batch)
            except _UNCERTAIN:
                latest = Checkpoint.read_from(ref)
                if latest.token != following.token:  # it did not land: another worker won, or a document changed
                    conflicts = _back_off(run, source, checkpoint, latest, conflicts, start)
                    checkpoint = latest
                    break
                checkpoint = latest  # it landed; the error came after the commit
            bar.advance(len(batch))
        else:
            conflicts = 0


def _back_off(run: Run, source: Source, mine: Checkpoint, latest: Checkpoint, conflicts: int, start) -> int:
    """After a batch that did not land: how many conflicts in a row, sleeping before the page is redone."""
    if latest.update_time != mine.update_time:
        return 0  # another worker advanced this range: continue after its checkpoint
    if conflicts + 1 > MAX_CONFLICTS:
        raise MigrationError(
            f"migration {run.revision.version}: documents after {mine.last or start or 'the start'} in "
            f"{source.describe()} changed {MAX_CONFLICTS} times while being migrated (the application keeps "
            "writing them). Rerun when traffic is lower: it resumes here.")
    time.sleep(min(2.0, 0.05 * 2 ** conflicts) * random.uniform(0.5, 1.0))
    return conflicts + 1


def _transform(run: Run, fn: Callable, snap) -> Change | None:
    def children(path: str) -> list[Document]:
        return [Document(s.reference.path, s.to_dict() or {}, children) for s in run.client.collection(path).stream()]

    return apply(fn, snap.reference.path, snap.to_dict() or {}, snap.update_time, children, run.revision.version)


def _pack(changes: list[tuple[str, Change | None]], version: str) -> list[list[tuple[str, Change | None]]]:
    """Consecutive documents in batches of at most BATCH_LIMIT - 1 writes (the checkpoint is the last one)."""
    batches: list[list[tuple[str, Change | None]]] = []
    current: list[tuple[str, Change | None]] = []
    writes = 0
    for path, change in changes:
        count = len(change.writes) if change else 0
        if count > BATCH_LIMIT - 1:
            raise DocumentFailed(f"migration {version}: {path} needs {count} writes; one document's writes must fit "
                                 f"in one atomic batch ({BATCH_LIMIT - 1}). Split the work into two migrations.")
        if current and writes + count > BATCH_LIMIT - 1:
            batches.append(current)
            current, writes = [], 0
        current.append((path, change))
        writes += count
    if current:
        batches.append(current)
    return batches


def _advance(checkpoint: Checkpoint, batch, done: bool, range_id: str) -> Checkpoint:
    kinds = [c.kind for _, c in batch if c]
    writes = [w for _, c in batch if c for w in c.writes[1 if c.kind in ("update", "delete") else 0:]]
    return replace(checkpoint, last=batch[-1][0] if batch else checkpoint.last, done=done,
                   read=checkpoint.read + len(batch), updated=checkpoint.updated + kinds.count("update"),
                   deleted=checkpoint.deleted + kinds.count("delete") + sum(w.kind == "delete" for w in writes),
                   created=checkpoint.created + sum(w.kind == "set" for w in writes),
                   token=f"{range_id}:{uuid.uuid4().hex}")


def _commit(run: Run, ref, current: Checkpoint, following: Checkpoint, batch) -> Checkpoint:
    client = run.client
    commit = client.batch()
    writes = [w for _, change in batch if change for w in change.writes]
    for write in writes:
        _add(client, commit, write)
    fields = {"last": following.last, "done": following.done, "read": following.read, "updated": following.updated,
              "deleted": following.deleted, "created": following.created, "token": following.token,
              "attempt": run.attempt, "direction": run.direction, "owner": run.settings.owner}
    if current.update_time is None:
        commit.create(ref, fields)
    else:
        commit.update(ref, fields, option=client.write_option(last_update_time=current.update_time))
    if run.ramp_up is not None:
        run.ramp_up.take(len(writes) + 1)
    results = commit.commit()
    return replace(following, update_time=results[-1].update_time)


def _add(client, commit, write: Write) -> None:
    ref = client.document(write.path)
    option = client.write_option(last_update_time=write.update_time) if write.update_time is not None else None
    if write.kind == "update":
        commit.update(ref, write.fields, option=option)
    elif write.kind == "set":
        commit.set(ref, write.fields)
    else:
        commit.delete(ref, option=option)


# -- dry runs --------------------------------------------------------------------------------------------------

def _run_dry(run: Run, step: StepReport, source: Source, fn: Callable, bounds, total: int, label: str) -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def one_range(start, end):
        for page in sources.pages(run.reader, source, start=start, end=end, after=None,
                                  page_size=run.settings.page_size):
            for snap in page:
                with lock:
                    seen.add(snap.reference.path)
                _dry_document(run, step, source, fn, snap.reference.path, snap.to_dict() or {}, lock)
            bar.advance(len(page))

    with Progress(label + " (dry run)", total, enabled=run.settings.progress) as bar, \
            ThreadPoolExecutor(max_workers=min(run.settings.workers, len(bounds))) as pool:
        for future in [pool.submit(one_range, start, end) for start, end in bounds]:
            future.result()
    # Documents an earlier migration of this dry run created (or changed so that they now match the filter).
    for path, _ in list(run.overlay.documents(source)) if run.overlay else []:
        if path not in seen:
            _dry_document(run, step, source, fn, path, None, lock)


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
    for snap in run.reader.collection(collection_path).stream():
        found[snap.reference.path] = snap.to_dict() or {}
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

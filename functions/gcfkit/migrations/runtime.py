"""Settings of the engine (defaults overridable by environment variables) and the state of one run.

| setting | env variable | default |
|---|---|---|
| workers | GCFKIT_MIGRATION_WORKERS | 4 parallel range workers per process |
| page_size | GCFKIT_MIGRATION_PAGE_SIZE | 5000 documents per query, streamed and committed in batches of <= 499 |
| min_range_docs | GCFKIT_MIGRATION_MIN_RANGE_DOCS | 2000: smaller sources are one range |
| lease_seconds | GCFKIT_MIGRATION_LEASE_SECONDS | 60 |
| ramp_up | GCFKIT_MIGRATION_RAMP_UP | on for Cloud Firestore, off on the emulator |
| progress | GCFKIT_MIGRATION_PROGRESS | 1 (tqdm bars on stderr) |
| task_index / task_count | CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT | 0 / 1 |
| execution | CLOUD_RUN_EXECUTION | unset (a Cloud Run job execution shares one lock) |
| overlay_limit | GCFKIT_MIGRATION_OVERLAY_LIMIT | dryrun.OVERLAY_LIMIT (200,000 planned writes a plan holds) |
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from google.cloud.firestore_v1.rate_limiter import RateLimiter

from gcfkit.migrations.dryrun import Overlay
from gcfkit.migrations.revisions import Revision

BATCH_LIMIT = 500  # Firestore's maximum writes per commit; one of them is the range checkpoint
# Bytes of document writes per commit (batch_bytes()). Cloud Firestore takes requests up to 10 MiB; the emulator
# (a gRPC server with default options) refuses messages over 4 MiB. The checkpoint and the envelope fit in the rest.
CLOUD_BATCH_BYTES = 9_500_000
EMULATOR_BATCH_BYTES = 3_500_000


def batch_bytes(environ=None) -> int:
    """The byte cap of a commit's document writes: the emulator's when FIRESTORE_EMULATOR_HOST is set (read when a
    batch is built, not at import: the emulator's address may be set after this module is imported)."""
    env = os.environ if environ is None else environ
    return EMULATOR_BATCH_BYTES if env.get("FIRESTORE_EMULATOR_HOST") else CLOUD_BATCH_BYTES


@dataclass(frozen=True)
class Settings:
    workers: int = 4
    page_size: int = 5000  # few, long queries: a query costs the emulator a scan, Cloud Firestore a seek
    min_range_docs: int = 2000
    lease_seconds: float = 60.0
    ramp_up: bool = True
    progress: bool = True
    revert_on_failure: bool = True
    task_index: int = 0
    task_count: int = 1
    execution: str | None = None
    sample_diffs: int = 3
    overlay_limit: int | None = None  # planned writes a plan holds; None: dryrun.OVERLAY_LIMIT
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # tells apart runs of one process

    @classmethod
    def from_env(cls, environ=None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        flag = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}

        def number(name: str, default, kind=int):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None

        def boolean(name: str, default: bool) -> bool:
            raw = env.get(name, "").strip().lower()
            if raw and raw not in flag:
                raise ValueError(f"{name}={raw!r}: use 1/0, true/false, on/off")
            return flag.get(raw, default)

        settings = cls(
            workers=number("GCFKIT_MIGRATION_WORKERS", cls.workers),
            page_size=number("GCFKIT_MIGRATION_PAGE_SIZE", cls.page_size),
            min_range_docs=number("GCFKIT_MIGRATION_MIN_RANGE_DOCS", cls.min_range_docs),
            lease_seconds=number("GCFKIT_MIGRATION_LEASE_SECONDS", cls.lease_seconds, float),
            # The 500/50/5 ramp-up protects Cloud Firestore's tablets; the emulator has none to protect.
            ramp_up=boolean("GCFKIT_MIGRATION_RAMP_UP", not env.get("FIRESTORE_EMULATOR_HOST")),
            progress=boolean("GCFKIT_MIGRATION_PROGRESS", True),
            task_index=number("CLOUD_RUN_TASK_INDEX", 0),
            task_count=number("CLOUD_RUN_TASK_COUNT", 1),
            execution=env.get("CLOUD_RUN_EXECUTION") or None,
            overlay_limit=number("GCFKIT_MIGRATION_OVERLAY_LIMIT", None))
        settings = replace(settings, **overrides)
        if settings.task_count > 1 and not settings.execution:
            raise ValueError("CLOUD_RUN_TASK_COUNT > 1 needs CLOUD_RUN_EXECUTION (Cloud Run sets both): the tasks of "
                             "one execution share the migration lock")
        if not 0 <= settings.task_index < settings.task_count:
            raise ValueError(f"CLOUD_RUN_TASK_INDEX={settings.task_index} is outside 0..CLOUD_RUN_TASK_COUNT-1 "
                             f"({settings.task_count})")
        if settings.overlay_limit is not None and settings.overlay_limit < 1:
            raise ValueError("GCFKIT_MIGRATION_OVERLAY_LIMIT must be at least 1")
        if not 1 <= settings.page_size <= 10_000 or settings.workers < 1:
            raise ValueError("GCFKIT_MIGRATION_PAGE_SIZE must be 1..10000 and GCFKIT_MIGRATION_WORKERS >= 1")
        return settings

    @property
    def owner(self) -> str:
        """Who this process is, in records and lock messages."""
        task = f" task {self.task_index}/{self.task_count}" if self.task_count > 1 else ""
        return f"{socket.gethostname()}:{os.getpid()}{task}"

    @property
    def group(self) -> str:
        """Who shares the lock: every task of one Cloud Run job execution, else only this process."""
        return f"cloud-run-execution:{self.execution}" if self.execution else f"{self.owner}#{self.instance}"


class RampUp:
    """Firestore's 500/50/5 rule (start at 500 writes/s, +50% every 5 minutes), shared by the workers of a
    process; the client library's own token bucket does the counting. Tasks of a job split the budget."""

    def __init__(self, task_count: int = 1):
        self._bucket = RateLimiter(initial_tokens=max(1, 500 // task_count))
        self._lock = threading.Lock()

    def take(self, writes: int) -> None:
        while writes > 0:
            with self._lock:
                writes -= self._bucket.take_tokens(writes, allow_less=True)
            if writes:
                time.sleep(0.02)  # >= 5 ms between polls, or the bucket's refill rounds to zero tokens


@dataclass
class StepReport:
    """One utility call of a migration: what it read and (would have) written."""

    number: int  # its position in this run
    description: str
    fingerprint: str = ""  # what it does (utility, source, filter fields, function): its identity across runs
    key: str = ""  # fingerprint hash + occurrence: names its split points and checkpoints
    split: str = ""
    ranges: int = 1
    read: int = 0
    updated: int = 0
    deleted: int = 0
    created: int = 0
    done_before: int = 0  # documents an interrupted run of this attempt had already migrated (resumed plans)
    samples: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def touched(self) -> int:
        return self.updated + self.deleted + self.created

    def as_dict(self) -> dict:
        return {"step": self.number, "description": self.description, "split": self.split, "ranges": self.ranges,
                "read": self.read, "updated": self.updated, "deleted": self.deleted, "created": self.created,
                "done_before": self.done_before, "seconds": round(self.seconds, 3), "samples": self.samples}


@dataclass
class Run:
    """One direction of one revision being executed (or dry-run, or validated)."""

    client: Any  # the real client: checkpoints, records, writes
    reader: Any  # what migration code reads through: the real client, or a ReadOnlyClient
    revision: Revision
    direction: str  # "up", "down" or "validate"
    settings: Settings
    attempt: int = 0
    dry_run: bool = False
    overlay: Overlay | None = None
    lock: Any = None
    ramp_up: RampUp | None = None
    steps: list[StepReport] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)  # a worker failed, or Ctrl-C
    claimed: set[str] = field(default_factory=set)  # recorded steps of this attempt this run has reached
    occurrences: dict[str, int] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return self.direction in ("up", "down") and not self.dry_run

    def next_step(self, description: str, fingerprint: str) -> StepReport:
        """The next utility call. Its key is its fingerprint's hash and how many calls with that fingerprint came
        before it in this run, so a resumed run finds its progress even if a branch skips other steps."""
        occurrence = self.occurrences[fingerprint] = self.occurrences.get(fingerprint, 0) + 1
        key = f"{hashlib.sha256(fingerprint.encode()).hexdigest()[:12]}-{occurrence}"
        step = StepReport(number=len(self.steps) + 1, description=description, fingerprint=fingerprint, key=key)
        self.steps.append(step)
        return step

    @property
    def step_prefix(self) -> str:
        return f"{self.attempt:03d}-{self.direction}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

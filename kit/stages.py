"""Numbered deploy stages with timings, so long work shows where it is and where it stopped."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageFailed(Exception):
    """A stage stopped the run; the message says why and what to do. Nothing after it ran."""


class Stages:
    def __init__(self, title: str, total: int, stream=None):
        self.title, self.total, self.done = title, total, 0
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        print(f"==> {title}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.done += 1
        print(f"[{self.done}/{self.total}] {name} ...", file=self.stream, flush=True)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            print(f"[{self.done}/{self.total}] {name}: FAILED after {time.perf_counter() - started:.1f}s",
                  file=self.stream, flush=True)
            raise
        print(f"[{self.done}/{self.total}] {name}: ok ({time.perf_counter() - started:.1f}s)",
              file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(f"      {text}", file=self.stream, flush=True)

    def finish(self) -> float:
        elapsed = time.perf_counter() - self.started
        print(f"==> {self.title}: done in {elapsed:.1f}s", file=self.stream, flush=True)
        return elapsed

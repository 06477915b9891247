"""`op`: what a revision's `up`, `down` and `validate` receive (Alembic's `op`, for Firestore documents).

Writing utilities (transform, add_field, backfill, rename_field, remove_field, delete_where) page by
document id, split large sources into ranges for parallel workers, show progress, and are resumable
exactly once; in a dry run they record what they would write instead. Reading helpers (documents,
count, expect) see the dry run's planned writes, so a plan validates the data as it *would* be.

Code in `up`/`down` outside these utilities runs again when an interrupted run resumes (and in every
task of a parallel Cloud Run job): keep it to reads, or make it idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gcfkit.migrations import source as sources
from gcfkit.migrations import steps
from gcfkit.migrations.documents import DELETE, Document, copy_data
from gcfkit.migrations.dryrun import DELETED
from gcfkit.migrations.errors import DocumentFailed, MigrationError
from gcfkit.migrations.progress import Progress
from gcfkit.migrations.runtime import Run, StepReport
from gcfkit.migrations.source import Source

Where = tuple[str, str, Any]


class Operations:
    DELETE = DELETE  # return op.DELETE from a transform to delete the document

    def __init__(self, run: Run):
        self._run = run

    @property
    def db(self):
        """The Firestore client for reads. In dry runs and in validate it refuses writes (ReadOnlyClient)."""
        return self._run.reader

    @property
    def dry_run(self) -> bool:
        return self._run.dry_run

    @property
    def version(self) -> str:
        return self._run.revision.version

    # -- writing utilities --------------------------------------------------------------------------------

    def transform(self, collection: str, fn: Callable[[Document], Any], *, group: bool = False,
                  where: tuple[Where, ...] | list[Where] = (), description: str = "transform") -> StepReport:
        """Apply `fn` to every document of `collection` (a collection group with group=True)."""
        if self._run.direction == "validate":
            raise MigrationError(f"migration {self.version}: validate must not change data (it called "
                                 f"{description} on {collection}); move that into up()")
        return steps.run_step(self._run, Source(collection, group, tuple(where)), fn, description)

    def add_field(self, collection: str, field: str, value: Any, *, group: bool = False) -> StepReport:
        """Set top-level `field` to `value` on every document that does not have it (existing values are kept)."""
        def add(doc: Document) -> None:
            if field not in doc.data:
                doc.data[field] = copy_data(value)
        return self.transform(collection, add, group=group, description=f"add field {field}")

    def backfill(self, collection: str, field: str, value: Any, *, group: bool = False) -> StepReport:
        """Fill `field` where it is missing or null: `value` is a constant or `fn(doc)` computing it."""
        def fill(doc: Document) -> None:
            if doc.data.get(field) is None:
                doc.data[field] = value(doc) if callable(value) else copy_data(value)
        return self.transform(collection, fill, group=group, description=f"backfill {field}")

    def rename_field(self, collection: str, old: str, new: str, *, group: bool = False) -> StepReport:
        """Move top-level `old` to `new` where `old` exists. A document that already has both is an error."""
        def rename(doc: Document) -> None:
            if old not in doc.data:
                return
            if new in doc.data:
                raise DocumentFailed(f"migration {self.version}: {doc.path} has both {old!r} and {new!r}; decide "
                                     f"which one wins (fix the document or write a transform), then rerun")
            doc.data[new] = doc.data.pop(old)
        return self.transform(collection, rename, group=group, description=f"rename field {old} -> {new}")

    def remove_field(self, collection: str, field: str, *, group: bool = False) -> StepReport:
        def remove(doc: Document) -> None:
            doc.data.pop(field, None)
        return self.transform(collection, remove, group=group, description=f"remove field {field}")

    def delete_where(self, collection: str, *where: Where, group: bool = False) -> StepReport:
        """Delete the documents matching every `(field, operator, value)` filter (Firestore evaluates them).

        Equality filters page by id on Firestore's automatic indexes; range filters need a composite index
        (field, __name__), which Firestore's error message links to.
        """
        if not where:
            raise MigrationError(f"migration {self.version}: delete_where({collection!r}) needs at least one filter; "
                                 "to empty a collection use transform(collection, lambda doc: op.DELETE)")
        return self.transform(collection, lambda doc: DELETE, group=group, where=where, description="delete")

    # -- reading helpers ----------------------------------------------------------------------------------

    def documents(self, collection: str, *, group: bool = False, where: tuple[Where, ...] | list[Where] = ()
                  ) -> Iterator[Document]:
        """Every document of the source, in id order, as this run sees it (dry runs: with planned writes)."""
        source = Source(collection, group, tuple(where))
        overlay = self._run.overlay if self._run.dry_run else None
        seen: set[str] = set()

        def children(path: str) -> list[Document]:
            return list(self.documents(path))

        for page in sources.pages(self._run.reader, source, start=None, end=None, after=None,
                                  page_size=self._run.settings.page_size):
            for row in page:
                path, data = row.path, row.data
                if overlay is not None and path in overlay:
                    seen.add(path)
                    data = overlay.get(path)
                    if data is DELETED or not source.matches(data):
                        continue
                yield Document(path, data, children)
        if overlay is not None:
            for path, data in list(overlay.documents(source)):
                if path not in seen:
                    yield Document(path, data, children)

    def count(self, collection: str, *, group: bool = False, where: tuple[Where, ...] | list[Where] = ()) -> int:
        if self._run.dry_run and self._run.overlay is not None:
            return sum(1 for _ in self.documents(collection, group=group, where=where))
        return sources.count(self._run.reader, Source(collection, group, tuple(where)))

    def expect(self, collection: str, check: Callable[[Document], bool], description: str, *, group: bool = False,
               where: tuple[Where, ...] | list[Where] = ()) -> bool:
        """Validation: every document of the source must pass `check`. Failures are collected and reported
        together (count and sample document paths) when `validate` returns."""
        source = Source(collection, group, tuple(where))
        total = sources.count(self._run.reader, source)
        failed, samples, checked = 0, [], 0
        label = f"{self.version} validate: {description}"
        with Progress(label, total, enabled=self._run.settings.progress) as bar:
            for doc in self.documents(collection, group=group, where=where):
                checked += 1
                try:
                    ok = bool(check(doc))
                except Exception as exc:  # a check that raises on a document is a failed check, with the reason
                    ok, doc = False, f"{doc.path} ({type(exc).__name__}: {exc})"
                if not ok:
                    failed += 1
                    if len(samples) < 5:
                        samples.append(doc if isinstance(doc, str) else doc.path)
                bar.advance(1)
        if failed:
            self._run.failures.append(f"{failed} of {checked} documents of {source.describe()} fail "
                                      f"{description!r} (e.g. {', '.join(samples)})")
        return not failed

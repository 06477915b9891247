"""One document as a transform sees it, and the writes its transform turns into.

A transform is `fn(doc)`: change `doc.data` in place or return a new dict (the document's new content),
return `DELETE` to delete it, and call `doc.set_child` / `doc.delete_child` for documents under it (all of
one document's writes land in the same atomic batch as its checkpoint). Only changed top-level fields are
written, with the document's last update time as precondition, so a concurrent write by the application
is never overwritten: the engine re-reads and re-applies instead.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.cloud.firestore_v1 import DELETE_FIELD

from gcfkit.migrations.errors import DocumentFailed, restamp_remedy


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()  # return this from a transform to delete the document


@dataclass
class Write:
    kind: str  # "update" (fields: top-level field -> new value, or DELETE_FIELD), "set", "delete"
    path: str
    fields: dict[str, Any] | None = None
    update_time: Any = None  # precondition: the document is unchanged since it was read


@dataclass
class Change:
    """What one document's transform asks for; `before`/`after` are only the changed top-level fields."""

    path: str
    writes: list[Write]
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] | None = field(default_factory=dict)  # None: the document is deleted

    @property
    def kind(self) -> str:
        return "delete" if self.after is None else "update" if self.before or self.after else "children"


class Document:
    """A document handed to a transform. `data` is a private deep copy; mutate it or return a new dict."""

    __slots__ = ("_children", "_extra", "data", "path")

    def __init__(self, path: str, data: dict, children: Callable[[str], list[Document]]):
        self.path, self.data = path, data
        self._children, self._extra = children, []

    @property
    def id(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"Document({self.path!r})"

    def set_child(self, relative_path: str, data: dict) -> None:
        """Create or replace the document at `<this document>/<relative_path>` (e.g. "attempts/0001")."""
        self._extra.append(Write("set", _child_path(self.path, relative_path), dict(data)))

    def delete_child(self, relative_path: str) -> None:
        self._extra.append(Write("delete", _child_path(self.path, relative_path)))

    def children(self, collection_id: str) -> list[Document]:
        """The documents of the subcollection `collection_id` under this one (read-only copies)."""
        return self._children(f"{self.path}/{collection_id}")


def _child_path(parent: str, relative: str) -> str:
    parts = relative.strip("/").split("/")
    if len(parts) % 2 or not all(parts):
        raise ValueError(f"{relative!r} under {parent}: a child document path is collection/id[/collection/id...]")
    return f"{parent}/{relative.strip('/')}"


def apply(fn: Callable, path: str, data: dict, update_time: Any, children: Callable, version: str) -> Change | None:
    """Run `fn` on one document; None when it asks for no write at all. `data` is only read, never changed."""
    original = data
    doc = Document(path, copy_data(data), children)
    try:
        result = fn(doc)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise DocumentFailed(
            f"migration {version}: the transform failed on document {path}: {type(exc).__name__}: {exc} "
            f"({where.filename}:{where.lineno}). Nothing of this document's batch was written; earlier batches are "
            "committed and checkpointed. Fix the document and apply again: it resumes here. To fix the migration "
            f"file instead, edit it, accept the edit with {restamp_remedy(version)}, then apply again: documents "
            "already migrated keep what the old file did.") from exc
    new = doc.data if result is None else result
    if new is DELETE:
        return Change(path, [Write("delete", path, update_time=update_time), *doc._extra], before=original,
                      after=None)
    if not isinstance(new, dict):
        raise DocumentFailed(f"migration {version}: the transform returned {type(new).__name__} for {path}; return "
                             "the new data (a dict), None (keep the in-place changes to doc.data) or op.DELETE")
    changed = [key for key in original.keys() | new.keys() if original.get(key, _ABSENT) != new.get(key, _ABSENT)]
    writes = list(doc._extra)
    if changed:
        writes.insert(0, Write("update", path, {key: new.get(key, DELETE_FIELD) for key in changed}, update_time))
    if not writes:
        return None
    return Change(path, writes, before={k: original[k] for k in changed if k in original},
                  after={k: new[k] for k in changed if k in new})


_ABSENT = object()


def copy_data(value: Any) -> Any:
    # Firestore data is dicts, lists and leaf values; this is several times faster than copy.deepcopy.
    if isinstance(value, dict):
        return {k: copy_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_data(v) for v in value]
    return value

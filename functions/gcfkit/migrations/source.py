"""What a utility migrates (a collection or collection group, optionally filtered) and how it is read:
paged by document id with cursors, and split into document-id ranges for parallel workers.

Splitting asks Firestore for partition cursors (`get_partitions`, one cheap RPC). The emulator answers
`501 PartitionQuery is unimplemented` (and partition queries can be refused elsewhere), so there are two
fallbacks, both exact about coverage (any sorted split points cover every document exactly once; only
the balance between ranges depends on them):
- a collection: sample its first and last document ids (two keys-only queries; the last one by offset,
  as the emulator refuses descending name scans) and interpolate split points between them. Auto-ids are
  uniform, so ranges come out even; skewed ids give uneven ranges, which more ranges than workers absorb.
- a collection group: ids of different parents cannot be interpolated into valid paths, so it streams the
  group keys-only (`select(["__name__"])`: only names cross the wire) and keeps every k-th name, holding
  at most `pieces` names in memory.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.types.document import Document

# Python twins of Firestore's filter operators: for the range filters applied in process (below), and where
# the dry run must decide membership for documents of its overlay. A missing field never matches.
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda a, b: a in b, "not-in": lambda a, b: a not in b,
    "array-contains": lambda a, b: isinstance(a, list) and b in a,
    "array-contains-any": lambda a, b: isinstance(a, list) and any(x in a for x in b),
}
_MISSING = object()
# Firestore orders a query with a range or != filter by that field first, which the document-id cursors of
# paging, ranges and checkpoints cannot follow ("order by clause cannot contain more fields after the key"):
# those filters are applied to the documents as they are read (read, and billed, like the others).
_IN_PROCESS = frozenset({"<", "<=", ">", ">=", "!=", "not-in"})


@dataclass(frozen=True)
class Source:
    """A collection path ("users", "users/u1/attempts") or, with group=True, a collection id of a group."""

    collection: str
    group: bool = False
    where: tuple[tuple[str, str, Any], ...] = ()
    keys_only: bool = False  # read document names only (splitting, counting what exists)

    def __post_init__(self) -> None:
        segments = self.collection.strip("/").split("/")
        if not self.collection or len(segments) % 2 == 0 or (self.group and len(segments) != 1):
            raise ValueError(f"{self.collection!r} is not a collection path (users, users/u1/attempts)"
                             + (" — a collection group is a single collection id" if self.group else ""))
        for field, op, _ in self.where:
            if op not in _OPERATORS:
                raise ValueError(f"where {field!r} {op!r}: unknown operator; allowed: {', '.join(_OPERATORS)}")

    def describe(self) -> str:
        text = f"collection group {self.collection}" if self.group else self.collection
        return text + "".join(f" where {f} {op} {v!r}" for f, op, v in self.where)

    def query(self, client):
        """The query of the filters Firestore applies (see _IN_PROCESS for the others: `keeps`)."""
        query = client.collection_group(self.collection) if self.group else client.collection(self.collection)
        for field, op, value in self.where:
            if op not in _IN_PROCESS:
                query = query.where(filter=FieldFilter(field, op, value))
        return query.select(["__name__"]) if self.keys_only else query

    @functools.cached_property
    def in_process(self) -> tuple:
        """The filters applied to documents as they are read (see _IN_PROCESS); empty for most sources."""
        return tuple(w for w in self.where if w[1] in _IN_PROCESS)

    def keeps(self, data: dict) -> bool:
        """Does a document the query returned pass the filters applied in process?"""
        return _matches(self.in_process, data)

    def contains(self, path: str) -> bool:
        """Is the document at `path` in this source's collection (filters aside)?"""
        parent, _, _ = path.rpartition("/")
        return parent.rsplit("/", 1)[-1] == self.collection if self.group else parent == self.collection

    def matches(self, data: dict) -> bool:
        return _matches(self.where, data)


def _matches(where, data: dict) -> bool:
    """Firestore's filters in Python. A missing field never matches."""
    for field, op, value in where:
        current: Any = data
        for part in field.split("."):
            current = current.get(part, _MISSING) if isinstance(current, dict) else _MISSING
        try:
            if current is _MISSING or not _OPERATORS[op](current, value):
                return False
        except TypeError:  # Firestore orders mixed types; a mismatch simply does not match
            return False
    return True


@dataclass(frozen=True)
class Row:
    """A document as read: relative path, data, and its update time (the precondition for writing it back)."""

    path: str
    data: dict
    update_time: Any


def ordered(client, source: Source, *, start: str | None = None, end: str | None = None, after: str | None = None):
    """The query of [start, end) in document-id order, after `after` (a checkpoint) if given."""
    query = source.query(client).order_by("__name__")
    if after is not None:
        query = query.start_after({"__name__": client.document(after)})
    elif start is not None:
        query = query.start_at({"__name__": client.document(start)})
    if end is not None:
        query = query.end_before({"__name__": client.document(end)})
    return query


def rows(client, source: Source, query) -> Iterator[Row]:
    """Stream `query` (built from `source`) as Rows.

    The same RunQuery RPC as `query.stream()`, without building a DocumentSnapshot per document: those
    cost about 100 µs of CPU each, half of the engine's time per document (bench/bench_migrations.py).
    The values are decoded by the client library's own decoder, so types come out exactly as usual.
    """
    root = f"{client._database_string}/documents"
    parent = root if source.group or "/" not in source.collection else f"{root}/{source.collection.rsplit('/', 1)[0]}"
    request = {"parent": parent, "structured_query": query._to_protobuf()}
    cut = len(root) + 1
    for response in client._firestore_api.run_query(request=request, metadata=client._rpc_metadata):
        found = response._pb
        if found.HasField("document"):
            document = found.document
            yield Row(document.name[cut:], _helpers.decode_dict(Document.wrap(document).fields, client),
                      document.update_time)


def pages(client, source: Source, *, start: str | None, end: str | None, after: str | None,
          page_size: int) -> Iterator[list[Row]]:
    """Rows of [start, end) in document-id order, `page_size` at a time, resuming after `after`.

    Each page is its own query with a cursor, so no stream stays open long enough to hit a deadline.
    """
    while True:
        read = list(rows(client, source, ordered(client, source, start=start, end=end, after=after).limit(page_size)))
        page = [row for row in read if source.keeps(row.data)] if source.in_process else read
        if page:
            yield page
        if len(read) < page_size:
            return
        after = read[-1].path


def count(client, source: Source) -> int:
    """How many documents the query returns (with filters applied in process: at least as many as match)."""
    result = source.query(client).count().get()
    return int(result[0][0].value)


def split_points(client, source: Source, pieces: int, total: int) -> tuple[list[str], str]:
    """Up to pieces-1 document paths that cut `source` into ranges, and how they were found."""
    if pieces <= 1 or total <= 1:
        return [], "one range"
    try:
        points = _partition_points(client, source, pieces)
        return points, f"{len(points) + 1} ranges from Firestore partition cursors"
    except (gexc.MethodNotImplemented, gexc.InvalidArgument, gexc.FailedPrecondition) as exc:
        reason = "partition queries are unimplemented (emulator)" if isinstance(
            exc, gexc.MethodNotImplemented) else f"partition query refused: {exc.message}"
    if source.group:
        points = _scanned_points(client, source, pieces, total)
        return points, f"{len(points) + 1} ranges from a keys-only scan ({reason})"
    points = _interpolated_points(client, source, pieces, total)
    return points, f"{len(points) + 1} ranges interpolated between the first and last id ({reason})"


def _partition_points(client, source: Source, pieces: int) -> list[str]:
    # Partition queries only take an unfiltered collection group ordered by name. For a plain collection we
    # partition its group and keep the cursors inside it: any sorted subset of split points is a valid split.
    points = {partition.end_at.path for partition in
              client.collection_group(source.collection.rsplit("/", 1)[-1]).get_partitions(pieces)
              if partition.end_at is not None and (source.group or source.contains(partition.end_at.path))}
    return sorted(points, key=lambda p: p.split("/"))


def _scanned_points(client, source: Source, pieces: int, total: int) -> list[str]:
    # Keeping only every k-th name while streaming holds `pieces` names in memory for any collection size.
    every = max(1, -(-total // pieces))
    points: list[str] = []
    keys = replace(source, keys_only=True)
    for seen, row in enumerate(rows(client, keys, ordered(client, keys))):
        if seen and seen % every == 0 and len(points) < pieces - 1:
            points.append(row.path)
    return points


# Ids are read as numbers whose digits are the characters of an alphabet in ASCII order, which keeps their
# order, so a number halfway between two ids' numbers is an id halfway between them. The alphabet is the
# smallest that holds the ids' differing parts: digits for sequential ids, [0-9A-Za-z] for auto-ids,
# printable ASCII otherwise (other characters are clamped to its ends).
_ALPHABETS = ("0123456789", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
              "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "/"))


def _interpolated_points(client, source: Source, pieces: int, total: int) -> list[str]:
    keys = replace(source, keys_only=True).query(client).order_by("__name__")
    first = [s.id for s in keys.limit(1).stream()]
    last = [s.id for s in keys.offset(max(0, total - 1)).limit(1).stream()]
    if not first or not last or first[0] >= last[0]:
        return []
    low, high = first[0], last[0]
    shared = next((i for i, (x, y) in enumerate(zip(low, high, strict=False)) if x != y),
                  min(len(low), len(high)))
    tail = set(low[shared:] + high[shared:])
    alphabet = next(a for a in _ALPHABETS if tail <= set(a) or a is _ALPHABETS[-1])
    width = max(len(low), len(high)) - shared + 2
    a, b = _id_number(low[shared:], width, alphabet), _id_number(high[shared:], width, alphabet)
    ids = {low[:shared] + _number_id(a + (b - a) * i // pieces, width, alphabet) for i in range(1, pieces)}
    valid = (i for i in ids if low < i <= high and i not in (".", "..")
             and not (i.startswith("__") and i.endswith("__")))  # reserved ids cannot be cursors
    return [f"{source.collection}/{i}" for i in sorted(valid)]


def _id_number(text: str, width: int, alphabet: str) -> int:
    value = 0
    for char in text.ljust(width, alphabet[0])[:width]:
        digit = alphabet.find(char)
        if digit < 0:  # outside the alphabet: the nearest end keeps the order (ties are harmless)
            digit = 0 if char < alphabet[0] else len(alphabet) - 1
        value = value * len(alphabet) + digit
    return value


def _number_id(value: int, width: int, alphabet: str) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, len(alphabet))
        chars.append(alphabet[digit])
    return "".join(reversed(chars)).rstrip(alphabet[0]) or alphabet[0]

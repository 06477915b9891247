"""Dry runs: a Firestore client that cannot write, and the overlay that stands in for the writes it refused.

`ReadOnlyClient` is a real `google.cloud.firestore.Client` whose gRPC channel refuses every RPC that is
not on a read-only allowlist, so no code path (document.set, batches, BulkWriter, transactions, or the raw
GAPIC `_firestore_api.commit`) can write through it. `batch()`, `bulk_writer()` and `transaction()` also
refuse up front so the error points at the line that tried. Migrations and `validate` receive it in dry
runs; the engine records what the utilities would have written in an `Overlay`, which later reads of the
same dry run see (so the plan for 0003 sees what 0002 would have done).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
from google.cloud import firestore
from google.cloud.firestore_v1.services.firestore import client as firestore_client
from google.cloud.firestore_v1.services.firestore.transports.grpc import FirestoreGrpcTransport

from gcfkit.migrations.client import database_id
from gcfkit.migrations.errors import DryRunWriteRefused
from gcfkit.migrations.source import Source

READ_ONLY_RPCS = frozenset({"GetDocument", "ListDocuments", "BatchGetDocuments", "RunQuery", "RunAggregationQuery",
                            "PartitionQuery", "ListCollectionIds", "Listen", "Rollback"})
DELETED = None  # what the overlay holds for a document the dry run deleted
OVERLAY_LIMIT = 200_000  # planned document writes a plan holds in memory (about 1 KB each)


def _refusal(what: str) -> DryRunWriteRefused:
    return DryRunWriteRefused(
        f"dry run: {what} would write to Firestore, and this client refuses writes. Write through the op "
        "utilities (op.transform, op.add_field, ...) or doc.set_child/doc.delete_child, which the engine "
        "records in dry runs and commits (checkpointed, exactly once) in real runs.")


class _RefuseWrites(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    @staticmethod
    def _check(details) -> None:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        name = method.rsplit("/", 1)[-1]
        if name not in READ_ONLY_RPCS:
            raise _refusal(f"the RPC {method}")

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self._check(client_call_details)
        return continuation(client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        self._check(client_call_details)
        return continuation(client_call_details, request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        self._check(client_call_details)
        return continuation(client_call_details, request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        self._check(client_call_details)
        return continuation(client_call_details, request_iterator)


class _ReadOnlyTransport(FirestoreGrpcTransport):
    @classmethod
    def create_channel(cls, *args, **kwargs) -> grpc.Channel:
        return grpc.intercept_channel(super().create_channel(*args, **kwargs), _RefuseWrites())


class ReadOnlyClient(firestore.Client):
    """A Firestore client that reads like any other and refuses every write at the gRPC channel."""

    @classmethod
    def of(cls, client: firestore.Client) -> ReadOnlyClient:
        read_only = cls(project=client.project, credentials=client._credentials, database=database_id(client))
        # The emulator address is read from the environment at construction; keep the original's, so a
        # client made for the emulator can never turn into one that reaches the cloud.
        read_only._emulator_host = client._emulator_host
        return read_only

    @property
    def _firestore_api(self):
        # Both channel factories of the base client (cloud: transport.create_channel, emulator:
        # _emulator_channel) are wrapped, so the GAPIC client and its transport only ever see the guard.
        return self._firestore_api_helper(_ReadOnlyTransport, firestore_client.FirestoreClient, firestore_client)

    def _emulator_channel(self, transport):
        return grpc.intercept_channel(super()._emulator_channel(transport), _RefuseWrites())

    def batch(self):
        raise _refusal("a write batch")

    def bulk_writer(self, *args, **kwargs):
        raise _refusal("a BulkWriter")

    def transaction(self, **kwargs):
        raise _refusal("a transaction")


class Overlay:
    """The dry run's view of the database after the writes it refused: path -> new data, or DELETED.

    Bounded: past `limit` documents it stops recording and says so in the plan (`truncated`), because a
    plan must not run a laptop out of memory on a large collection. Validation of what was planned after
    that point is reported as not checked, never as a failure: it would see documents without their writes.
    """

    def __init__(self, limit: int | None = None):
        self.limit, self.truncated = OVERLAY_LIMIT if limit is None else limit, False
        self._docs: dict[str, dict | None] = {}
        self._lock = threading.Lock()

    def __contains__(self, path: str) -> bool:
        return path in self._docs

    def get(self, path: str) -> dict | None:
        return self._docs[path]

    def record(self, path: str, data: dict | None) -> None:
        with self._lock:
            if path not in self._docs and len(self._docs) >= self.limit:
                self.truncated = True
                return
            self._docs[path] = data

    def documents(self, source: Source) -> Iterator[tuple[str, dict]]:
        """Documents of `source` the overlay holds (created or changed), filters applied."""
        with self._lock:
            items = [(p, d) for p, d in self._docs.items() if d is not DELETED and source.contains(p)]
        for path, data in sorted(items, key=lambda item: item[0].split("/")):
            if source.matches(data):
                yield path, data

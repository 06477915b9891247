"""Splitting sources into document-id ranges: Firestore partition cursors (the cloud path) and the fallbacks the
emulator needs (it answers PartitionQuery with 501)."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from gcfkit.migrations.source import Source, split_points
from google.cloud import firestore as gcf
from google.cloud.firestore_v1.types import firestore as api
from google.cloud.firestore_v1.types import query as query_types
from migration_helpers import put

PROJECT = "demo-partitions"
ROOT = f"projects/{PROJECT}/databases/(default)/documents"


class PartitionServer:
    """A local gRPC server answering google.firestore.v1.Firestore/PartitionQuery with fixed cursors, built from
    the client library's own request and response types, so the real client exercises the cloud path."""

    def __init__(self, cursors: list[str]):
        self.cursors, self.requests = cursors, []
        handler = grpc.method_handlers_generic_handler("google.firestore.v1.Firestore", {
            "PartitionQuery": grpc.unary_unary_rpc_method_handler(
                self.partition, request_deserializer=api.PartitionQueryRequest.deserialize,
                response_serializer=api.PartitionQueryResponse.serialize)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def partition(self, request, context):
        self.requests.append(request)
        return api.PartitionQueryResponse(partitions=[
            query_types.Cursor(values=[{"reference_value": f"{ROOT}/{path}"}]) for path in self.cursors])


@pytest.fixture
def partition_server(monkeypatch):
    server = PartitionServer(["users/u0300", "orgs/o1/users/x", "users/u0100", "users/u0200"])
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server.port}")
    client = gcf.Client(project=PROJECT)
    yield server, client
    client.close()
    server.server.stop(grace=None)


def test_partition_cursors_split_a_collection_keeping_only_its_own_documents(partition_server):
    server, client = partition_server
    points, how = split_points(client, Source("users"), pieces=4, total=400)
    assert points == ["users/u0100", "users/u0200", "users/u0300"]
    assert how == "4 ranges from Firestore partition cursors"
    request = server.requests[0]
    assert request.parent == ROOT and request.partition_count == 4
    assert request.structured_query.from_[0].collection_id == "users"
    assert request.structured_query.from_[0].all_descendants, "partition queries run on collection groups"


def test_partition_cursors_of_a_collection_group_keep_every_parent(partition_server):
    _, client = partition_server
    points, _ = split_points(client, Source("users", group=True), pieces=5, total=400)
    assert points == ["orgs/o1/users/x", "users/u0100", "users/u0200", "users/u0300"]


@pytest.mark.firestore
def test_the_emulator_answers_501_so_a_group_is_split_from_a_keys_only_scan(firestore):
    for parent in ("a", "b", "c", "d"):
        put(firestore, f"teams/{parent}/members", 50, ids=lambda i, p=parent: f"{p}{i:03d}")
    points, how = split_points(firestore, Source("members", group=True), pieces=4, total=200)
    assert how == "4 ranges from a keys-only scan (partition queries are unimplemented (emulator))"
    assert points == ["teams/b/members/b000", "teams/c/members/c000", "teams/d/members/d000"]


@pytest.mark.firestore
def test_the_emulator_answers_501_so_a_collection_is_split_between_its_first_and_last_id(firestore):
    put(firestore, "items", 400, ids=lambda i: f"i{i:04d}")
    points, how = split_points(firestore, Source("items"), pieces=4, total=400)
    assert how == "4 ranges interpolated between the first and last id (partition queries are unimplemented (emulator))"
    assert len(points) == 3 and points == sorted(points)
    sizes = [len(list(firestore.collection("items").order_by("__name__").start_at({"__name__": firestore.document(a)})
                      .end_before({"__name__": firestore.document(b)}).stream()))
             for a, b in zip(["items/i0000", *points], [*points, "items/i9999"], strict=True)]
    assert sum(sizes) == 400 and min(sizes) >= 80, f"sequential ids give even ranges: {sizes}"

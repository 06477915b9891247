"""Commits of the engine: Write protobufs built directly and sent as one Commit RPC (atomic, as a batch's).

`WriteBatch.update` parses every field path and searches every value for transforms: about 60 µs per
document, a third of the engine's CPU per document, for writes whose shape the engine already knows
(changed top-level fields, a last-update-time precondition). Values are still encoded by the client
library's own encoder; a value it cannot encode (SERVER_TIMESTAMP, Increment, ArrayUnion, ...) sends that
write through the library's own helpers instead, so everything a WriteBatch accepts works here too.
"""

from __future__ import annotations

from typing import Any

from google.cloud.firestore_v1 import DELETE_FIELD, _helpers
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import firestore as api
from google.cloud.firestore_v1.types import write as write_types
from google.protobuf.timestamp_pb2 import Timestamp
from proto.datetime_helpers import DatetimeWithNanoseconds

from gcfkit.migrations.documents import Write

_WRITE = write_types.Write.pb()
_COMMIT = api.CommitRequest.pb()


def timestamp(value: Any) -> Timestamp:
    return value if isinstance(value, Timestamp) else value.timestamp_pb()


def write_pb(client, write: Write):
    """The Write protobuf of one engine write."""
    name = f"{client._database_string}/documents/{write.path}"
    if write.kind == "delete":
        pb = _WRITE(delete=name)
    else:
        try:
            pb = _WRITE()
            pb.update.name = name
            for key, value in (write.fields or {}).items():
                if value is not DELETE_FIELD:
                    pb.update.fields[key].CopyFrom(_helpers.encode_value(value)._pb)
        except TypeError:  # a sentinel or transform in the data: the library knows how to write it
            return _library_pb(client, name, write)
        if write.kind == "update":
            pb.update_mask.field_paths.extend(FieldPath(key).to_api_repr() for key in write.fields or {})
    if write.update_time is not None:
        pb.current_document.update_time.CopyFrom(timestamp(write.update_time))
    elif write.kind == "update":
        pb.current_document.exists = True  # what WriteBatch.update does: never create by updating
    return pb


def _library_pb(client, name: str, write: Write):
    if write.kind == "set":
        (pb,) = _helpers.pbs_for_set_no_merge(name, write.fields)
    else:
        option = client.write_option(last_update_time=write.update_time) if write.update_time is not None else None
        (pb,) = _helpers.pbs_for_update(name, {FieldPath(k).to_api_repr(): v for k, v in write.fields.items()},
                                        option)
    return write_types.Write.pb(pb)


def commit(client, pbs: list) -> DatetimeWithNanoseconds:
    """One atomic Commit of `pbs`; the update time of its last write (the engine's checkpoint)."""
    request = api.CommitRequest.wrap(_COMMIT(database=client._database_string, writes=pbs))
    response = client._firestore_api.commit(request=request, metadata=client._rpc_metadata)
    return DatetimeWithNanoseconds.from_timestamp_pb(response._pb.write_results[-1].update_time)

"""Batches on the real emulator: a commit holds at most 499 document writes and batch_bytes() of them, so large
documents are committed in more, smaller batches; one document too large for any commit is named."""

from __future__ import annotations

import pytest
from gcfkit.migrations import DocumentFailed, MigrationError
from migration_helpers import engine, put

pytestmark = pytest.mark.firestore


def test_large_documents_are_committed_in_batches_below_the_request_size_limit(firestore, revisions):
    put(firestore, "items", 499)  # one batch by count: 499 x 30 KB would be a 15 MB commit
    revisions.add("0001", "blob", '''
        def up(op):
            op.add_field("items", "blob", "x" * 30_000)


        def down(op):
            op.remove_field("items", "blob")


        def validate(op):
            op.expect("items", lambda doc: len(doc.data["blob"]) == 30_000, "every item has the blob")
        ''')
    (record,) = engine(firestore, revisions).up()
    assert (record.status, record.documents_touched) == ("applied", 499)
    sizes = [len(snapshot.get("blob")) for snapshot in firestore.collection("items").select(["blob"]).stream()]
    assert sizes == [30_000] * 499
    (checkpoint,) = [c.to_dict() for c in firestore.collection("_migrations/0001/checkpoints").stream()]
    assert (checkpoint["done"], checkpoint["read"], checkpoint["updated"]) == (True, 499, 499)


def test_one_document_whose_writes_cannot_fit_in_one_commit_is_named(firestore, revisions):
    put(firestore, "items", 3)
    revisions.add("0001", "split", '''
        def up(op):
            def split(doc):
                if doc.id == "d00001":
                    for part in range(5):  # 5 x 900 KB: each child fits in Firestore, all five not in one commit
                        doc.set_child(f"parts/{part}", {"blob": "x" * 900_000})
            op.transform("items", split)


        def down(op):
            pass


        def validate(op):
            pass
        ''')
    with pytest.raises(MigrationError, match=r"migration 0001: items/d00001 needs 5 writes of 4,500,\d+ bytes; one "
                                             r"document's writes must fit in one atomic commit \(499 writes, "
                                             r"3,500,000 bytes\)") as failed:
        engine(firestore, revisions).up()
    assert isinstance(failed.value.__cause__, DocumentFailed)
    assert not list(firestore.collection_group("parts").stream()), "nothing of its batch was written"
    assert firestore.document("_migrations/0001").get().get("status") == "failed"


def test_the_byte_cap_is_the_emulators_only_on_the_emulator():
    from gcfkit.migrations.runtime import batch_bytes

    # Cloud Firestore takes 10 MiB per request: 9.5 MB of writes leave room for the checkpoint and the envelope.
    assert batch_bytes({}) == 9_500_000
    assert batch_bytes({"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080"}) == 3_500_000  # the emulator takes 4 MiB

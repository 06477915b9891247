"""What the engine reads from a `google.cloud.firestore.Client` that the library keeps private.

The client has no public attribute for the database it targets: only `_database`, set from its `database`
argument ("(default)" when none was given). Plans record it, `up --plan` compares it, and the dry run's
read-only twin must target the same database, so every read of it goes through here: if the library ever
renames it, one line changes.
"""

from __future__ import annotations


def database_id(client) -> str:
    """The Firestore database id `client` reads and writes, e.g. "(default)"."""
    return client._database

"""Fixtures of the migration tests (helpers live in migration_helpers.py)."""

from __future__ import annotations

import pytest
from migration_helpers import Revisions


@pytest.fixture
def revisions(tmp_path) -> Revisions:
    """An empty migrations directory; `revisions.add("0001", "slug", body)` writes a revision file."""
    return Revisions(tmp_path / "migrations")

"""Test-suite fixtures: the real Cloud Firestore emulator, started once per session.

Tests refuse to touch anything but an emulator: the project id is a `demo-` id (which Google's client
libraries and emulators treat as offline-only) and FIRESTORE_EMULATOR_HOST must point at loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.emulator import FirestoreEmulator, emulation_problem, free_port

TEST_PROJECT = "demo-gcf-kit-test"
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# No test may reach Google with a developer's credentials, whatever the shell exported.
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)


def refuse_unless_emulated(emulator_address: str) -> None:
    if problem := emulation_problem(os.environ, emulator_address):
        pytest.exit(f"refusing to run Firestore tests: {problem}", returncode=3)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """The real emulator on a free loopback port, for the whole session; stopped (whole process group) after."""
    log = Path(tmp_path_factory.mktemp("emulator")) / "firestore.log"
    emulator = FirestoreEmulator.start("127.0.0.1", free_port(), log)
    previous = {k: os.environ.get(k) for k in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.address
    os.environ["GOOGLE_CLOUD_PROJECT"] = TEST_PROJECT
    refuse_unless_emulated(emulator.address)
    try:
        yield emulator
    finally:
        emulator.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def firestore(firestore_emulator: FirestoreEmulator):
    """A Firestore client on the emulator, wiped before the test (each test starts from an empty database)."""
    from google.cloud import firestore as gcf

    refuse_unless_emulated(firestore_emulator.address)
    firestore_emulator.wipe(TEST_PROJECT)
    client = gcf.Client(project=TEST_PROJECT)
    yield client
    client.close()

"""The emulator helper: real emulator, wiped between tests, stopped with its whole process group."""

from __future__ import annotations

import os
import subprocess

import pytest

from kit.emulator import EmulatorError, FirestoreEmulator, emulation_problem, find_launcher, free_port, port_in_use


@pytest.mark.firestore
def test_a_test_writes(firestore):
    firestore.collection("users").document("ada").set({"name": "Ada"})
    assert firestore.collection("users").document("ada").get().to_dict() == {"name": "Ada"}


@pytest.mark.firestore
def test_the_next_test_starts_empty(firestore):
    assert list(firestore.collection("users").stream()) == []


def test_the_test_guard_accepts_only_the_test_emulator_and_a_demo_project(firestore_emulator):
    good = {"FIRESTORE_EMULATOR_HOST": firestore_emulator.address, "GOOGLE_CLOUD_PROJECT": "demo-gcf-kit-test"}
    assert emulation_problem(good, firestore_emulator.address) is None
    assert "not a demo- project" in emulation_problem({**good, "GOOGLE_CLOUD_PROJECT": "acme-prod"},
                                                      firestore_emulator.address)
    assert "not the test emulator" in emulation_problem({"GOOGLE_CLOUD_PROJECT": "demo-x"}, firestore_emulator.address)
    assert "not the test emulator" in emulation_problem({**good, "FIRESTORE_EMULATOR_HOST": "10.0.0.5:8080"},
                                                        firestore_emulator.address)
    assert "credentials" in emulation_problem({**good, "GOOGLE_APPLICATION_CREDENTIALS": "/k.json"},
                                              firestore_emulator.address)
    assert emulation_problem(os.environ, firestore_emulator.address) is None, "the session itself is guarded"


def test_stop_leaves_no_process_of_the_group(tmp_path):
    emulator = FirestoreEmulator.start("127.0.0.1", free_port(), tmp_path / "emulator.log")
    pgid = emulator.pgid
    members = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    assert len(members) >= 2, "the launcher script and its Java child both run in the group"
    emulator.stop()
    assert subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).stdout == b""
    assert not port_in_use("127.0.0.1", emulator.port)


def test_a_taken_port_is_a_clear_error(firestore_emulator, tmp_path):
    with pytest.raises(EmulatorError, match=f"port {firestore_emulator.port} on 127.0.0.1 is already in use"):
        FirestoreEmulator.start("127.0.0.1", firestore_emulator.port, tmp_path / "emulator.log")


def test_a_missing_emulator_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GCF_KIT_FIRESTORE_EMULATOR", str(tmp_path / "nowhere" / "cloud_firestore_emulator"))
    with pytest.raises(EmulatorError, match="apt-get install google-cloud-cli-firestore-emulator"):
        find_launcher()


def test_the_launcher_is_found_on_this_machine():
    assert os.access(find_launcher(), os.X_OK)

"""`python -m gcfkit.migrations` on bad input and failing services: one clear `error:` line and an exit code,
never a stack trace (real subprocesses; Firestore is the real emulator, or no Firestore at all)."""

from __future__ import annotations

import json

import pytest
from migration_helpers import BUMP, cli, put

pytestmark = pytest.mark.firestore


def assert_clean_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") or "error: " in result.stderr.splitlines()[-1], result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_plan_files_that_are_not_plans_are_refused_in_one_line(firestore, revisions, tmp_path):
    put(firestore, "items", 2)
    revisions.add("0001", "bump", BUMP)
    folder = ["--dir", str(revisions.directory)]
    assert_clean_error(cli(*folder, "up", "--plan", str(tmp_path)), 1,
                       f"{tmp_path}: cannot read the plan file (Is a directory)")
    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps({"plan_id": "x", "project": "demo-gcf-kit-test", "database": "(default)",
                                   "migrations": [{"v": 1}]}))
    assert_clean_error(cli(*folder, "up", "--plan", str(lacking)), 1,
                       "not a migration plan written by `plan --out` (migrations[0] has no 'version' and 'checksum')")
    approvals = tmp_path / "approvals.json"
    approvals.write_text(json.dumps({"plan_id": "x", "project": "demo-gcf-kit-test", "database": "(default)",
                                     "migrations": [], "approved_irreversible": "0001"}))
    assert_clean_error(cli(*folder, "up", "--plan", str(approvals)), 1,
                       "'approved_irreversible' is not a list of versions")
    assert_clean_error(cli(*folder, "plan", "--out", str(tmp_path)), 1, "cannot write the plan file")
    assert not firestore.document("_migrations/0001").get().exists, "nothing applied"


def test_bad_settings_are_named_and_workers_below_one_refused(revisions):
    revisions.add("0001", "bump", BUMP)
    folder = ["--dir", str(revisions.directory)]
    assert_clean_error(cli(*folder, "--workers", "0", "status"), 2, "argument --workers: 0 is less than 1")
    assert_clean_error(cli(*folder, "status", env={"GCFKIT_MIGRATION_PAGE_SIZE": "lots"}), 2,
                       "GCFKIT_MIGRATION_PAGE_SIZE='lots' is not a number")


def test_missing_credentials_are_one_line_not_a_trace(revisions, tmp_path):
    revisions.add("0001", "bump", BUMP)
    # No emulator, no credentials anywhere (a fresh HOME has no application-default credentials).
    result = cli("--dir", str(revisions.directory), "status",
                 env={"FIRESTORE_EMULATOR_HOST": None, "GOOGLE_APPLICATION_CREDENTIALS": None, "HOME": str(tmp_path),
                      "GOOGLE_CLOUD_PROJECT": "demo-nothing", "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
                      "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"})
    assert_clean_error(result, 1, "error: no usable Google credentials to reach Firestore",
                       "`gcloud auth application-default login`")


def test_an_error_answered_by_firestore_is_one_line_not_a_trace(firestore, revisions):
    revisions.add("0001", "bump", BUMP)
    result = cli("--dir", str(revisions.directory), "--database", "Not_A_Database!", "status")
    assert_clean_error(result, 1, "error: Firestore of project demo-gcf-kit-test answered ",
                       "the command stopped there")

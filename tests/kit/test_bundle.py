"""The bundle is deterministic: same code -> same bytes -> same hash; only deployed files count.

Every test works on a temporary copy of functions/ (others edit functions/ while these run).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from kit.bundle import FIXED_TIME, FUNCTIONS_DIR, BundleError, build_bundle, bundle_files


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    return copy


def test_two_builds_give_identical_bytes(source, tmp_path):
    first = build_bundle(tmp_path / "a", source)
    second = build_bundle(tmp_path / "b", source)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256 and first.path.name == f"functions-{first.sha256[:16]}.zip"
    assert first.object_name == f"bundles/functions-{first.sha256[:16]}.zip"


def test_the_hash_ignores_where_when_and_in_which_order_files_were_written(source, tmp_path):
    original = build_bundle(tmp_path / "a", source)
    elsewhere = tmp_path / "checkout-2" / "functions"
    for name in reversed(bundle_files(source)):  # written in the opposite order, with other mtimes and modes
        target = elsewhere / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / name).read_bytes())
        os.utime(target, (1_700_000_000, 1_700_000_000))
        target.chmod(0o755)
    assert build_bundle(tmp_path / "b", elsewhere).sha256 == original.sha256


def test_changing_a_function_file_changes_the_hash(source, tmp_path):
    before = build_bundle(tmp_path / "a", source)
    main = source / "main.py"
    main.write_text(main.read_text() + "\n# a change\n")
    after = build_bundle(tmp_path / "b", source)
    assert after.sha256 != before.sha256 and after.object_name != before.object_name


@pytest.mark.parametrize("excluded", [
    "tests/test_api.py", "gcfkit/tests/helpers.py", "gcfkit/test_context.py", "gcfkit/context_test.py",
    "conftest.py", "gcfkit/__pycache__/settings.cpython-311.pyc", "stray.pyc", ".env", ".venv/lib/x.py",
    ".pytest_cache/v/cache", "debug.log", "gcf_kit.egg-info/PKG-INFO",
])
def test_tests_caches_and_hidden_files_do_not_change_the_hash(source, tmp_path, excluded):
    before = build_bundle(tmp_path / "a", source)
    path = source / excluded
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("def test_something():\n    assert sum([1, 1]) == 2\n")
    after = build_bundle(tmp_path / "b", source)
    assert after.sha256 == before.sha256 and excluded not in after.files


def test_changing_an_existing_test_file_does_not_change_the_hash(source, tmp_path):
    tests = source / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_main.py").write_text("def test_one():\n    assert len([1]) == 1\n")
    before = build_bundle(tmp_path / "a", source)
    (tests / "test_main.py").write_text("def test_one():\n    assert 2\n")
    assert build_bundle(tmp_path / "b", source).sha256 == before.sha256


def test_entries_are_sorted_stored_with_fixed_time_and_mode(source, tmp_path):
    bundle = build_bundle(tmp_path / "out", source)
    with zipfile.ZipFile(bundle.path) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos) == list(bundle.files)
        for info in infos:
            assert info.date_time == FIXED_TIME and info.compress_type == zipfile.ZIP_STORED
            assert info.external_attr >> 16 == 0o100644 and info.create_system == 3
        assert archive.read("main.py") == (source / "main.py").read_bytes()
    assert {"main.py", "requirements.txt"} <= set(bundle.files)
    assert not list((tmp_path / "out").glob(".*partial"))  # written atomically, nothing left behind


def test_entry_points_are_read_without_importing_main(source, tmp_path):
    (source / "main.py").write_text("import os\nfrom app import handler as orders\nraise SystemExit('imported!')\n"
                                    "def api(request):\n    pass\nclass Job:\n    pass\nworker = api\n")
    assert {"os", "orders", "api", "Job", "worker"} <= build_bundle(tmp_path / "out", source).entry_points


def test_a_symlink_is_refused_with_its_path(source, tmp_path):
    (tmp_path / "outside.py").write_text("SECRET = 1\n")
    (source / "linked.py").symlink_to(tmp_path / "outside.py")
    with pytest.raises(BundleError, match=r"linked\.py: symlinks are not bundled"):
        build_bundle(tmp_path / "out", source)


def test_missing_requirements_and_broken_main_are_named(source, tmp_path):
    (source / "requirements.txt").unlink()
    with pytest.raises(BundleError, match=r"missing requirements\.txt"):
        build_bundle(tmp_path / "out", source)
    (source / "requirements.txt").write_text("")
    (source / "main.py").write_text("def api(:\n")
    with pytest.raises(BundleError, match=r"main\.py:1: not valid Python"):
        build_bundle(tmp_path / "out", source)

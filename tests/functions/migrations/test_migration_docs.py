"""docs/migrations.md is executed: its "Testing your migrations" example runs as written, on the emulator."""

from __future__ import annotations

import re

import pytest

from kit.config import ROOT

DOC = ROOT / "docs" / "migrations.md"


@pytest.mark.firestore
def test_the_testing_your_migrations_example_passes(firestore, monkeypatch):
    section = DOC.read_text().split("## Testing your migrations", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(example, f"{DOC}:Testing your migrations", "exec"), namespace)
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository, as in a user's test run
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0](firestore)


def test_every_make_target_the_doc_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    commands = re.findall(r"(?:^|`)make ([a-z][a-z-]*[a-z])\b(?!-)", DOC.read_text(), re.M)
    assert {"deploy", "seed", "migrate-plan", "migrate", "migrate-status", "migration"} <= set(commands)
    for target in set(commands):
        assert re.search(rf"^{target}:", makefile, re.M), f"docs/migrations.md names `make {target}`"

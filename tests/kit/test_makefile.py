"""Makefile recipes that rewrite tracked files, run in a scratch copy with a stand-in Python (no network)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

from kit.config import ROOT

FAKE_PYTHON = """\
#!/bin/sh
# `python -m venv DIR`: a venv whose pip installs nothing and freezes two pins.
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 3
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
[ "$1" = "freeze" ] && printf 'jinja2==3.1.6\\npytest==8.4.2\\n'
exit 0
PIP
chmod +x "$3/bin/pip"
"""


def test_make_lock_keeps_the_header_of_requirements_lock(tmp_path):
    for name in ("Makefile", "requirements.lock", "requirements-checkov.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / "python3"
    python.write_text(textwrap.dedent(FAKE_PYTHON))
    python.chmod(0o755)
    header = (ROOT / "requirements.lock").read_text().splitlines(keepends=True)[:2]

    result = subprocess.run(["make", "--no-print-directory", "lock", f"PYTHON={python}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "requirements.lock").read_text() == "".join(header) + "jinja2==3.1.6\npytest==8.4.2\n"
    assert not any(p.name.startswith(".lock") or p.name == ".venv-lock" for p in tmp_path.iterdir())

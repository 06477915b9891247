"""The "Testing your code" example of docs/observability.md is run as it is written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "observability.md"


def test_the_testing_your_code_example_passes(tmp_path):
    section = DOC.read_text().split("## Testing your code", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    test_file = tmp_path / "test_docs_example.py"
    test_file.write_text(example)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GCFKIT_", "LOG_", "FUNCTION_"))}
    environ["PYTHONPATH"] = str(ROOT / "functions")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
                             "--rootdir", str(tmp_path), str(test_file)], cwd=ROOT, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout

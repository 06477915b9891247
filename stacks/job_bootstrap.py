"""Runs first in every task of the migration Cloud Run Job: unpack the bundle, install it, run the migrations.

The job uses a stock Python image and mounts the source bucket read-only (a Cloud Storage volume), so this
script is standard library only. It:
1. reads the bundle named by GCF_KIT_BUNDLE and refuses it unless its sha256 is GCF_KIT_BUNDLE_SHA256
   (the exact bytes the functions were deployed from);
2. unpacks it into GCF_KIT_WORKDIR (default /workspace/functions) and installs its requirements.txt;
3. replaces itself with `python -m gcfkit.migrations <args>` run in that folder (the job's args, `up` unless
   an execution overrides them; `up` applies exactly the reviewed plan GCFKIT_MIGRATION_PLAN names, or
   refuses). CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT and the other variables pass through unchanged.

The stack embeds this file's text in the job (`python -c <this file> up`); tests run it the same way.
"""

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path


def main(args: list[str]) -> int:
    bundle = Path(os.environ["GCF_KIT_BUNDLE"])
    expected = os.environ["GCF_KIT_BUNDLE_SHA256"]
    workdir = Path(os.environ.get("GCF_KIT_WORKDIR", "/workspace/functions"))
    task = f"task {os.environ.get('CLOUD_RUN_TASK_INDEX', '0')}/{os.environ.get('CLOUD_RUN_TASK_COUNT', '1')}"
    if not bundle.is_file():
        print(f"{task}: bundle {bundle} not found; is the source bucket mounted and the job's bundle "
              "current? (re-apply the stack)", file=sys.stderr)
        return 2
    data = bundle.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        print(f"{task}: bundle {bundle} has sha256 {actual}, expected {expected}; refusing to run it",
              file=sys.stderr)
        return 2
    workdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(workdir)
    print(f"{task}: bundle {actual[:16]} unpacked into {workdir}; installing requirements.txt", flush=True)
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--disable-pip-version-check",
               "--root-user-action=ignore", "-r", str(workdir / "requirements.txt")]
    if subprocess.run(install).returncode != 0:
        print(f"{task}: installing the bundle's requirements.txt failed (see pip's output above)", file=sys.stderr)
        return 2
    os.chdir(workdir)
    command = [sys.executable, "-m", "gcfkit.migrations", *args]
    print(f"{task}: running {' '.join(command[1:])}", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

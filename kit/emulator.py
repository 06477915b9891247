"""Google's Cloud Firestore emulator: find it, start it in its own process group, wait, wipe, stop.

The one place that starts the emulator: the test suite's session fixture and `make deploy` (local) both
call `FirestoreEmulator.start`. The launcher script starts a Java child that outlives a killed parent, so
the emulator always runs in a new session (process group) and is stopped by signalling the whole group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

INSTALL_HELP = (
    "The Cloud Firestore emulator (and Java 11+) is needed for the local environment and the tests.\n"
    "  Debian/Ubuntu: sudo apt-get install google-cloud-cli-firestore-emulator default-jre-headless\n"
    "  other systems: gcloud components install cloud-firestore-emulator   (and install a JRE)\n"
    "Or point GCF_KIT_FIRESTORE_EMULATOR at the cloud_firestore_emulator launcher.")
LAUNCHER = Path("platform", "cloud-firestore-emulator", "cloud_firestore_emulator")


class EmulatorError(RuntimeError):
    pass


def find_launcher() -> Path:
    """The `cloud_firestore_emulator` launcher, or EmulatorError saying how to install it."""
    if explicit := os.environ.get("GCF_KIT_FIRESTORE_EMULATOR"):
        candidates = [Path(explicit)]
    else:
        roots = [os.environ.get("CLOUDSDK_ROOT_DIR"), "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk",
                 "/opt/google-cloud-sdk", str(Path.home() / "google-cloud-sdk")]
        if gcloud := shutil.which("gcloud"):
            roots.append(str(Path(gcloud).resolve().parent.parent))
        candidates = [Path(root) / LAUNCHER for root in roots if root]
    for candidate in candidates:
        if candidate.is_file():
            if shutil.which("java") is None:
                raise EmulatorError(f"Java is not installed (the emulator at {candidate} needs it).\n{INSTALL_HELP}")
            return candidate
    raise EmulatorError(f"Cloud Firestore emulator not found (looked for {', '.join(map(str, candidates))}).\n"
                        f"{INSTALL_HELP}")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_group(pgid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group, then SIGKILL what is left. True if the group existed."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        _reap(pgid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _reap(pgid)
    return True


def _reap(pid: int) -> None:
    """Collect the group leader if it is our child, so it does not linger as a zombie in the group."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class FirestoreEmulator:
    host: str
    port: int
    pgid: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @classmethod
    def start(cls, host: str, port: int, log_path: Path, timeout: float = 60.0) -> FirestoreEmulator:
        """Start on host:port and wait until it answers. EmulatorError if the port is taken or it fails."""
        launcher = find_launcher()
        if port_in_use(host, port):
            raise EmulatorError(f"port {port} on {host} is already in use, so the Firestore emulator cannot "
                                "start there. Stop what uses it (`make down` if it is a previous local "
                                "environment) or choose another port.")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(launcher), "start", f"--host={host}", f"--port={port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        emulator = cls(host=host, port=port, pgid=process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if emulator.ready():
                return emulator
            if process.poll() is not None:
                stop_group(process.pid)
                tail = log_path.read_text(errors="replace")[-2000:]
                raise EmulatorError(f"the Firestore emulator exited with code {process.returncode}; "
                                    f"log {log_path}:\n{tail}")
            time.sleep(0.1)
        emulator.stop()
        raise EmulatorError(f"the Firestore emulator did not answer on {emulator.url} within {timeout:.0f}s; "
                            f"see {log_path}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                return response.status == 200 and response.read().strip() == b"Ok"
        except (OSError, urllib.error.URLError):
            return False

    def wipe(self, project: str) -> None:
        """Delete every document of `project`'s default database (the emulator's reset endpoint)."""
        request = urllib.request.Request(
            f"{self.url}/emulator/v1/projects/{project}/databases/(default)/documents", method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise EmulatorError(f"wiping the emulator failed: HTTP {response.status}")

    def stop(self) -> None:
        if self.pgid is not None:
            stop_group(self.pgid)
            self.pgid = None


def emulation_problem(environ: Mapping[str, str], emulator_address: str) -> str | None:
    """Why Firestore tests must not run with `environ`, or None when it points at the test emulator only."""
    host, project = environ.get("FIRESTORE_EMULATOR_HOST", ""), environ.get("GOOGLE_CLOUD_PROJECT", "")
    if host != emulator_address or not host.startswith(("127.0.0.1:", "localhost:")):
        return f"FIRESTORE_EMULATOR_HOST={host!r} is not the test emulator on loopback ({emulator_address})"
    if not project.startswith("demo-"):
        return f"GOOGLE_CLOUD_PROJECT={project!r} is not a demo- project (which can never reach a real database)"
    if environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return "GOOGLE_APPLICATION_CREDENTIALS is set: tests run without Google credentials"
    return None

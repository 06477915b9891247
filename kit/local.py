"""The local environment: the Firestore emulator plus every function served by functions-framework.

`make deploy` (ENV=local) -> `deploy_local`; `make down` -> `down`; `make status` -> `status`.
What runs is recorded in `.local/<env>/state.json` (process groups, ports, logs), so a later command can
replace or stop exactly what an earlier one started. A redeploy keeps a healthy emulator (and its data,
as a cloud database survives a code deploy) and replaces the functions; `make down` stops everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kit import hooks
from kit.config import FUNCTIONS_DIR, ROOT, STATE_DIR, Environment, Function, load_all, platform_env
from kit.emulator import EmulatorError, FirestoreEmulator, port_in_use, stop_group
from kit.stages import StageFailed, Stages

HEALTH_PATH = "/health"


@dataclass
class Served:
    name: str
    pgid: int
    port: int
    url: str
    log: str
    http: bool


@dataclass
class LocalState:
    env: str
    emulator_pgid: int | None = None
    emulator_address: str = ""
    functions: list[Served] = field(default_factory=list)

    @staticmethod
    def path(env: str) -> Path:
        return STATE_DIR / env / "state.json"

    @classmethod
    def read(cls, env: str) -> LocalState | None:
        path = cls.path(env)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(env=data["env"], emulator_pgid=data.get("emulator_pgid"),
                   emulator_address=data.get("emulator_address", ""),
                   functions=[Served(**f) for f in data.get("functions", [])])

    def write(self) -> None:
        path = self.path(self.env)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


def group_alive(pgid: int | None) -> bool:
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def deploy_local(env_name: str = "local") -> LocalState:
    """Validate, build, gate, then replace: the running functions are only touched once the gate has passed."""
    stages = Stages(f"deploy {env_name} (local: Firestore emulator + functions-framework)", total=6)
    with stages.stage("validate environment files"):
        environments = load_all()  # every file: a typo anywhere stops here, before anything starts
        env = environments.get(env_name)
        if env is None or env.local is None:
            raise StageFailed(f"environments/{env_name}.yaml has no local: section, so it is not served on this "
                              f"machine; use `make deploy ENV={env_name}` for a cloud environment")
        if missing := _unexported_secrets(env):
            raise StageFailed(f"environments/{env_name}.yaml: there is no Secret Manager locally, so every secret "
                              f"is read from your shell: {'; '.join(missing)}. Export them before `make deploy` "
                              "(the running functions were left as they are)")
        ports = {name: env.local.base_port + i for i, name in enumerate(env.functions)}
        stages.note(f"{len(environments)} environment files valid; {len(env.functions)} function(s) to serve")

    with stages.stage("synthesize the stacks of every environment"):
        result = subprocess.run([sys.executable, "-m", "stacks"], cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            raise StageFailed(f"synthesis failed (`make synth` shows the same):\n{result.stderr[-3000:]}")
        stages.note(result.stdout.strip().splitlines()[-1])

    with stages.stage("check ports, start the Firestore emulator"):
        previous = LocalState.read(env_name)
        _check_ports_free(env, ports, previous)
        emulator = _reuse_or_start_emulator(env, previous, stages)
        state = LocalState(env=env_name, emulator_pgid=emulator.pgid, emulator_address=emulator.address,
                           functions=previous.functions if previous else [])
        state.write()

    with stages.stage("pre-deploy hook (migration gate)"):
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.address
        hooks.pre_deploy(env, stages)

    with stages.stage("replace the served functions"):
        _stop_functions(state, stages)
        processes = {}
        for name, function in env.functions.items():
            served, processes[name] = _serve(env, name, function, ports[name], emulator)
            state.functions.append(served)
            state.write()
            stages.note(f"{name}: pid group {served.pgid} on port {ports[name]}")

    with stages.stage("check health"):
        for served in state.functions:
            _wait_healthy(served, processes[served.name])
            stages.note(f"{served.name}: healthy")

    stages.finish()
    _print_summary(env, state)
    return state


def down(env_name: str = "local") -> list[str]:
    """Stop everything `deploy_local` started for env_name. Returns what was stopped."""
    state = LocalState.read(env_name)
    if state is None:
        print(f"nothing to stop: no local environment {env_name!r} is recorded in {LocalState.path(env_name)}")
        return []
    stopped = [s.name for s in state.functions if stop_group(s.pgid)]
    if state.emulator_pgid and stop_group(state.emulator_pgid):
        stopped.append("firestore-emulator")
    LocalState.path(env_name).unlink()
    print(f"stopped {', '.join(stopped) or 'nothing (all had already exited)'}; logs kept in "
          f"{LocalState.path(env_name).parent / 'logs'}")
    return stopped


def status(env_name: str = "local") -> int:
    state = LocalState.read(env_name)
    if state is None:
        print(f"local environment {env_name!r} is not running (`make deploy` starts it)")
        return 1
    healthy = bool(state.functions)
    if not state.functions:
        print("no function is served (the last `make deploy` stopped before serving them; its output says why)")
    emulator_up = group_alive(state.emulator_pgid)
    print(f"firestore emulator  {state.emulator_address:<22} {'running' if emulator_up else 'STOPPED'}")
    healthy &= emulator_up
    for served in state.functions:
        ok = group_alive(served.pgid) and _probe(served) is not None
        print(f"{served.name:<19} {served.url:<22} {'healthy' if ok else 'DOWN'}   log: {served.log}")
        healthy &= ok
    return 0 if healthy else 1


def _stop_functions(state: LocalState, stages: Stages) -> None:
    for served in state.functions:
        if stop_group(served.pgid):
            stages.note(f"stopped the previous {served.name} (process group {served.pgid})")
    state.functions = []
    state.write()


def _reuse_or_start_emulator(env: Environment, previous: LocalState | None, stages: Stages) -> FirestoreEmulator:
    assert env.local is not None
    wanted = f"{env.local.host}:{env.local.firestore_port}"
    if previous and previous.emulator_pgid and group_alive(previous.emulator_pgid):
        running = FirestoreEmulator(env.local.host, env.local.firestore_port, previous.emulator_pgid)
        if previous.emulator_address == wanted and running.ready():
            stages.note(f"reusing the running emulator on {wanted} (data kept; `make down` resets it)")
            return running
        stop_group(previous.emulator_pgid)
    try:
        emulator = FirestoreEmulator.start(env.local.host, env.local.firestore_port,
                                           STATE_DIR / env.name / "logs" / "firestore.log")
    except EmulatorError as exc:
        raise StageFailed(f"{exc}\n(the port is set by local.firestore_port in environments/{env.name}.yaml)") \
            from None
    stages.note(f"started on {emulator.address} (process group {emulator.pgid})")
    return emulator


def _check_ports_free(env: Environment, ports: dict[str, int], previous: LocalState | None) -> None:
    """Every port must be free, or held by this environment's own previous function (replaced later)."""
    assert env.local is not None
    ours = {served.port for served in previous.functions if group_alive(served.pgid)} if previous else set()
    taken = [f"{name} -> {port}" for name, port in ports.items()
             if port not in ours and port_in_use(env.local.host, port)]
    if taken:
        raise StageFailed(f"port(s) already in use on {env.local.host}: {', '.join(taken)}. Stop what uses them "
                          f"or change local.base_port in environments/{env.name}.yaml (functions use base_port, "
                          "base_port+1, ...).")


def _unexported_secrets(env: Environment) -> list[str]:
    """`functions.<name>.secrets.<KEY>: KEY is not exported` for each secret the shell does not provide."""
    return [f"functions.{name}.secrets.{key}: {key} is not exported" for name, fn in env.functions.items()
            for key in fn.secrets if key not in os.environ]


def _function_environment(env: Environment, name: str, fn: Function, emulator: FirestoreEmulator) -> dict[str, str]:
    """What a served function sees (its secrets from the shell: `deploy_local` checked they are exported)."""
    return {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ", "SYSTEMROOT")},
        **{key: os.environ[key] for key in fn.secrets},
        **fn.env,
        **platform_env(env.project, env.region),
        "PYTHONUNBUFFERED": "1",
        "FIRESTORE_EMULATOR_HOST": emulator.address,
        "GCLOUD_PROJECT": env.project,
        "K_SERVICE": name,
        "K_REVISION": f"{name}-local",
        "FUNCTION_TARGET": fn.entry_point,
    }


def _serve(env: Environment, name: str, fn: Function, port: int,
           emulator: FirestoreEmulator) -> tuple[Served, subprocess.Popen]:
    assert env.local is not None
    log = STATE_DIR / env.name / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "functions_framework", "--source", str(FUNCTIONS_DIR / "main.py"),
               "--target", fn.entry_point, "--host", env.local.host, "--port", str(port),
               "--signature-type", "http" if fn.is_http else "cloudevent"]
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(command, cwd=FUNCTIONS_DIR, env=_function_environment(env, name, fn, emulator),
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return Served(name=name, pgid=process.pid, port=port, url=f"http://{env.local.host}:{port}", log=str(log),
                  http=fn.is_http), process


def _probe(served: Served) -> dict | None:
    """GET the health endpoint (event functions: any HTTP answer means the server is up)."""
    url = served.url + (HEALTH_PATH if served.http else "/")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read()
            return json.loads(body) if served.http else {"status": response.status}
    except urllib.error.HTTPError as exc:
        return None if served.http else {"status": exc.code}
    except (OSError, ValueError):
        return None


def _wait_healthy(served: Served, process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll the health endpoint; give up at once if the server exits (e.g. a function that fails at import)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if _probe(served) is not None:
            return
        time.sleep(0.2)
    exited = process.poll()
    if exited is not None:
        stop_group(served.pgid)  # its workers, if any outlived it
    why = f"exited with code {exited}" if exited is not None else f"did not answer within {timeout:.0f}s"
    tail = Path(served.log).read_text(errors="replace")[-2500:]
    raise StageFailed(f"{served.name} {why} ({served.url}{HEALTH_PATH} must answer 200 JSON); "
                      f"last lines of {served.log}:\n{tail}")


def _print_summary(env: Environment, state: LocalState) -> None:
    print(f"\nlocal environment {env.name!r} is up (project {env.project}):")
    print(f"  firestore emulator  FIRESTORE_EMULATOR_HOST={state.emulator_address}")
    for served in state.functions:
        probe = served.url + (HEALTH_PATH if served.http else "/  (CloudEvent function: POST events here)")
        print(f"  {served.name:<19} {probe}")
    print(f"  logs                {STATE_DIR / env.name / 'logs'}/")
    print("  status / stop       make status   /   make down")

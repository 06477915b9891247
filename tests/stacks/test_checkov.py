"""checkov on every synthesized stack (`--framework terraform_json`, offline): zero failed checks except the
accepted findings in stacks/checkov-skips.yaml, each with its written reason.

checkov lives in its own venv (.venv-checkov, from requirements-checkov.lock) because its pins conflict with
pytest's; `make setup` (and so `make test`) installs it. The showcase fixture is scanned too: its deliberate
choices (a public function with ingress all) must be caught, which proves the scan sees invoker bindings.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kit.config import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SKIPS = ROOT / "stacks" / "checkov-skips.yaml"
# What the showcase declares on purpose and checkov must flag: `public: true` and `ingress: all` on its api.
SHOWCASE_FINDINGS = {("CKV_GCP_102", "showcase-functions", "api_invokers"),
                     ("CKV_GCP_124", "showcase-functions", "api")}


@dataclass(frozen=True)
class Finding:
    check: str
    stack: str
    resource: str  # the Terraform resource name (checkov reports `resource.<name>`)
    title: str


@dataclass(frozen=True)
class Scan:
    failed: list[Finding]
    passed_per_stack: dict[str, int]
    parsing_errors: int


def run_checkov(*stack_roots: Path) -> Scan:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: run `make setup`, which installs checkov into "
                    ".venv-checkov from requirements-checkov.lock", pytrace=False)
    command = [str(CHECKOV), "--framework", "terraform_json", "--skip-download", "--output", "json",
               "--soft-fail"]
    for root in stack_roots:
        command += ["-d", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    reports = _json_documents(result.stdout)  # one report per -d folder, printed one after another
    assert reports, f"checkov produced no report (exit {result.returncode}):\n{result.stderr[-3000:]}"
    failed, passed, errors = [], {}, 0
    for report in reports:
        errors += report["summary"]["parsing_errors"]
        for check in report["results"]["failed_checks"]:
            failed.append(Finding(check["check_id"], _stack(check["file_abs_path"]),
                                  check["resource"].removeprefix("resource."), check["check_name"]))
        for check in report["results"]["passed_checks"]:
            stack = _stack(check["file_abs_path"])
            passed[stack] = passed.get(stack, 0) + 1
    return Scan(failed, passed, errors)


def _json_documents(text: str) -> list[dict]:
    decoder, documents, index = json.JSONDecoder(), [], 0
    while text[index:].strip():
        document, index = decoder.raw_decode(text, len(text) - len(text[index:].lstrip()))
        documents += document if isinstance(document, list) else [document]
    return documents


def _stack(path: str) -> str:
    return Path(path).parent.name  # .../stacks/<stack>/cdk.tf.json


def load_skips() -> list[dict]:
    return yaml.safe_load(SKIPS.read_text())


def skipped_by(finding: Finding, skip: dict) -> bool:
    stacks = skip["stacks"]
    return (skip["check"] == finding.check and fnmatch.fnmatchcase(finding.resource, skip["resource"])
            and (stacks == "all" or finding.stack in stacks))


@pytest.fixture(scope="module")
def scan(synthesized, showcase) -> Scan:
    return run_checkov(synthesized.outdir / "stacks", showcase.outdir / "stacks")


def test_every_skip_has_a_reason_and_a_precise_scope():
    for skip in load_skips():
        assert set(skip) == {"check", "resource", "stacks", "reason"}, skip
        assert skip["stacks"] == "all" or isinstance(skip["stacks"], list), skip
        assert len(skip["reason"].split()) >= 15, f"{skip['check']}: write out why the finding is accepted"


def test_every_stack_was_scanned(scan, synthesized, showcase):
    assert scan.parsing_errors == 0
    for stack in [*synthesized.stacks, *showcase.stacks]:
        assert scan.passed_per_stack.get(stack, 0) >= 10, f"checkov evaluated (almost) nothing in {stack}"


def test_shipped_stacks_fail_no_check_outside_the_skip_list(scan, synthesized):
    skips = load_skips()
    unexpected = [f for f in scan.failed if f.stack in synthesized.stacks
                  and not any(skipped_by(f, skip) for skip in skips)]
    assert not unexpected, "checkov findings (fix the stack, or add a skip with its reason to " \
        f"{SKIPS.relative_to(ROOT)}):\n" + "\n".join(f"  {f.stack}: {f.check} {f.title} ({f.resource})"
                                                     for f in unexpected)


def test_the_showcase_public_function_is_caught(scan):
    skips = load_skips()
    found = {(f.check, f.stack, f.resource) for f in scan.failed
             if f.stack == "showcase-functions" and not any(skipped_by(f, skip) for skip in skips)}
    assert found == SHOWCASE_FINDINGS


def test_every_skip_still_matches_a_finding(scan):
    for skip in load_skips():
        assert any(skipped_by(f, skip) for f in scan.failed), \
            f"{SKIPS.relative_to(ROOT)}: {skip['check']} on {skip['resource']} matches nothing any more; remove it"


def test_a_missing_checkov_fails_and_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHECKOV", ROOT / ".venv-checkov-absent" / "bin" / "checkov")
    with pytest.raises(pytest.fail.Exception, match=r"run `make setup`, which installs checkov into \.venv-checkov"):
        run_checkov(tmp_path)


def test_an_unlisted_finding_is_not_skipped():
    finding = Finding("CKV_GCP_124", "prod-functions", "api", "ingress")
    assert not any(skipped_by(finding, skip) for skip in load_skips())  # the dev-only skip stays dev-only
    assert any(skipped_by(Finding("CKV_GCP_124", "dev-functions", "api", "ingress"), s) for s in load_skips())

"""Synthesized stacks shared by the stack tests: synthesized once per session, in this process.

`synthesized` holds the shipped environments (environments/*.yaml, the real functions/ bundle);
`showcase` holds the fixture environment in fixtures/ that uses every feature the stacks support.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit.config import environment_names

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    stacks: dict[str, Path]  # stack name -> folder with cdk.tf.json

    def json(self, stack: str) -> dict:
        return json.loads((self.stacks[stack] / "cdk.tf.json").read_text())

    @property
    def bundle_sha256(self) -> str:
        """The bundle hash the stacks were synthesized with (every stack carries it as an output)."""
        return self.json(next(iter(self.stacks)))["output"]["bundle_sha256"]["value"]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from stacks.app import synth

    outdir = tmp_path_factory.mktemp("synth") / "cdktf.out"
    return Synthesized(outdir, synth(environment_names(), outdir=outdir))


@pytest.fixture(scope="session")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from stacks.app import synth

    outdir = tmp_path_factory.mktemp("showcase") / "cdktf.out"
    return Synthesized(outdir, synth(["showcase"], outdir=outdir, environments_dir=FIXTURES / "environments",
                                     functions_dir=FIXTURES / "functions"))

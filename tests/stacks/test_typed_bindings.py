"""The provider bindings are typed: a wrong-typed or misspelled argument fails the synth, before any JSON is written.

(terraform cannot run here, so this is where such mistakes must be caught.) The Python bindings check argument
types at construction (TypeError), the jsii kernel checks nested values (RuntimeError), and unknown keyword
arguments are rejected by Python itself.
"""

from __future__ import annotations

import pytest
from cdktn import App, TerraformStack
from cdktn_provider_google.cloudfunctions2_function import Cloudfunctions2Function, Cloudfunctions2FunctionServiceConfig
from cdktn_provider_google.storage_bucket import StorageBucket

import stacks.function
from kit.config import environment_names
from stacks.app import synth


def test_a_wrong_typed_value_in_the_stack_code_fails_the_synth(tmp_path, monkeypatch):
    # A realistic slip: a boolean where the API takes a string (environment variables are strings).
    monkeypatch.setattr(stacks.function, "FIXED_ENV", {"LOG_EXECUTION_ID": True})
    # The jsii kernel rejects it while building the function (a RuntimeError naming the key and the type).
    with pytest.raises(RuntimeError, match=r"Key 'LOG_EXECUTION_ID': Unable to deserialize value as string"):
        synth(environment_names(), outdir=tmp_path / "out")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert not [p for p in written if p.endswith(".tf.json")], written


def test_a_misspelled_argument_is_rejected():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'min_instances'"):
        Cloudfunctions2FunctionServiceConfig(min_instances=2)  # the attribute is min_instance_count
    stack = TerraformStack(App(), "typos")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'service_confg'"):
        Cloudfunctions2Function(stack, "fn", name="fn", location="europe-west1", service_confg={})


def test_a_wrong_typed_argument_is_rejected():
    with pytest.raises(TypeError, match=r"min_instance_count"):
        Cloudfunctions2FunctionServiceConfig(min_instance_count="two")
    stack = TerraformStack(App(), "types")
    with pytest.raises(TypeError, match=r"versioning"):
        StorageBucket(stack, "bucket", name="b", location="EU", versioning=True)  # needs StorageBucketVersioning

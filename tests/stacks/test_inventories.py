"""Inventory tests, in the style of Cloud Foundation Fabric: per environment, a YAML of the expected resources.

`tests/stacks/inventories/<env>.yaml` has three sections:

    values:    # Terraform address -> the attributes that matter; only the keys listed are compared
      google_cloudfunctions2_function.api:
        service_config: {min_instance_count: 2, max_instance_count: 50}
    counts:    # resource type -> how many (all of them: an unexpected resource fails the test)
      google_cloudfunctions2_function: 1
    outputs:   # output name -> value (all of them)
      bundle_sha256: <bundle-sha256>

`provider.google` and `terraform.backend` address the provider block and the state backend.
The bundle's hash changes whenever functions/ does, so it is written `<bundle-sha256>` (the full hash) and
`<bundle-hash>` (the 16-character prefix in object names). Data sources are addressed `data.<type>.<name>`.
A mismatch prints a unified diff (inventory vs synthesized): update the inventory when the change is intended.
"""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit.config import environment_names

INVENTORIES = Path(__file__).parent / "inventories"
ABSENT = "<absent>"


def normalize(value: Any, sha256: str) -> Any:
    """Drop CDK Terrain's `//` metadata and replace the bundle hash with placeholders."""
    if isinstance(value, dict):
        return {k: normalize(v, sha256) for k, v in value.items() if k != "//"}
    if isinstance(value, list):
        return [normalize(v, sha256) for v in value]
    if isinstance(value, str):
        return value.replace(sha256, "<bundle-sha256>").replace(sha256[:16], "<bundle-hash>")
    return value


def addresses(tf: dict) -> dict[str, Any]:
    found = {f"{kind}.{name}": body for kind, items in tf.get("resource", {}).items() for name, body in items.items()}
    found |= {f"data.{kind}.{name}": body for kind, items in tf.get("data", {}).items() for name, body in items.items()}
    return found


def project(actual: Any, expected: Any) -> Any:
    """`actual` cut to the shape of `expected`: keys the inventory does not list are not compared."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: project(actual[k], v) if k in actual else ABSENT for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [project(a, e) for a, e in zip(actual, expected, strict=True)]
    return actual


def inventory_view(tf: dict, sha256: str, expected: dict) -> dict:
    """What the synthesized stack says, in the inventory's shape."""
    tf = normalize(tf, sha256)
    found = addresses(tf)
    counts = Counter(address.rsplit(".", 1)[0] for address in found)
    # The provider and the backend are addressable too (they are not resources, so they are not counted).
    settings = {"provider.google": tf["provider"]["google"][0], "terraform.backend": tf["terraform"]["backend"]}
    return {
        "values": {address: project({**found, **settings}.get(address, ABSENT), attrs)
                   for address, attrs in expected.get("values", {}).items()},
        "counts": dict(sorted(counts.items())),
        "outputs": {name: body["value"] for name, body in sorted(tf.get("output", {}).items())},
    }


def diff(expected: dict, actual: dict, inventory: Path) -> str:
    dump = lambda doc: yaml.safe_dump(doc, sort_keys=False, width=200).splitlines()  # noqa: E731
    lines = difflib.unified_diff(dump(expected), dump(actual), fromfile=f"{inventory} (expected)",
                                 tofile="synthesized", lineterm="")
    return "\n".join(lines)


def check_inventory(tf: dict, sha256: str, inventory: Path) -> None:
    loaded = yaml.safe_load(inventory.read_text())
    expected = {"values": loaded.get("values", {}), "counts": dict(sorted(loaded.get("counts", {}).items())),
                "outputs": dict(sorted(loaded.get("outputs", {}).items()))}
    actual = inventory_view(tf, sha256, expected)
    if actual != expected:
        pytest.fail(f"the synthesized stack differs from {inventory.name} (update the inventory if the change "
                    f"is intended):\n{diff(expected, actual, inventory)}", pytrace=False)


@pytest.mark.parametrize("env_name", environment_names())
def test_shipped_environment_matches_its_inventory(synthesized, env_name):
    check_inventory(synthesized.json(f"{env_name}-functions"), synthesized.bundle_sha256,
                    INVENTORIES / f"{env_name}.yaml")


def test_showcase_matches_its_inventory(showcase):
    check_inventory(showcase.json("showcase-functions"), showcase.bundle_sha256, INVENTORIES / "showcase.yaml")


def test_every_inventory_belongs_to_an_environment():
    assert sorted(p.stem for p in INVENTORIES.glob("*.yaml")) == sorted([*environment_names(), "showcase"])


def test_a_mismatch_prints_a_readable_diff(synthesized, tmp_path):
    """The failure names the inventory and shows expected vs synthesized as a unified diff."""
    inventory = tmp_path / "prod.yaml"
    text = (INVENTORIES / "prod.yaml").read_text()
    inventory.write_text(text.replace("min_instance_count: 2", "min_instance_count: 3"))
    with pytest.raises(pytest.fail.Exception) as failure:
        check_inventory(synthesized.json("prod-functions"), synthesized.bundle_sha256, inventory)
    message = str(failure.value)
    assert "differs from prod.yaml" in message
    assert "-      min_instance_count: 3\n+      min_instance_count: 2" in message

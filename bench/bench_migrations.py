"""Migration throughput: one field transform (n += 1) over 20,000 documents on the Firestore emulator.

  engine  `Engine.up()` of a revision doing `op.transform("items", bump)`: lock, records, range split,
          parallel workers, checkpoint committed with every batch, preconditions, validate (a no-op here)
  floor   the minimal hand-written loop: one stream, `batch.update` per document, commit every 500
  naive   `get()` then `update()` per document

Goals: the engine at >= 0.8x the floor's docs/s and >= 10x the naive loop's. The engine and the floor run
twice, alternating, and the better run of each counts, so a burst of load from elsewhere on this shared
machine does not decide a ratio; the naive loop runs once over all 20,000 documents.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

from kit.emulator import FirestoreEmulator, free_port  # noqa: E402

DOCUMENTS = 20_000
PROJECT = "demo-bench-migrations"
RESULT = ROOT / ".bench" / "migrations.json"
REVISION = '''version = "0001"
name = "bump n"


def up(op):
    def bump(doc):
        doc.data["n"] += 1
    op.transform("items", bump, description="n += 1")


def down(op):
    pass


def validate(op):
    pass
'''


def seed(client) -> None:
    batch = client.batch()
    for i in range(DOCUMENTS):
        batch.set(client.document(f"items/i{i:06d}"), {"n": 0, "name": f"item {i}", "tags": ["a", "b"],
                                                        "price": i * 1.5})
        if len(batch) == 500:
            batch.commit()
            batch = client.batch()
    if len(batch):
        batch.commit()


def floor(client) -> float:
    started = time.perf_counter()
    batch = client.batch()
    for snapshot in client.collection("items").stream():
        batch.update(snapshot.reference, {"n": snapshot.get("n") + 1})
        if len(batch) == 500:
            batch.commit()
            batch = client.batch()
    if len(batch):
        batch.commit()
    return DOCUMENTS / (time.perf_counter() - started)


def naive(client) -> float:
    started = time.perf_counter()
    for i in range(DOCUMENTS):
        reference = client.document(f"items/i{i:06d}")
        reference.update({"n": reference.get().get("n") + 1})
    return DOCUMENTS / (time.perf_counter() - started)


def engine(client, directory: Path) -> float:
    from gcfkit.migrations import Engine, Settings

    client.recursive_delete(client.collection("_migrations"))  # every round applies 0001 afresh
    runner = Engine(client, directory, Settings.from_env(progress=False))
    started = time.perf_counter()
    runner.up()
    return DOCUMENTS / (time.perf_counter() - started)


def main() -> int:
    emulator = FirestoreEmulator.start("127.0.0.1", free_port(), ROOT / ".bench" / "migrations-emulator.log")
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.address
    try:
        from google.cloud import firestore

        client = firestore.Client(project=PROJECT)
        seed(client)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "0001_bump_n.py").write_text(REVISION)
            rates: dict[str, list[float]] = {"floor": [], "engine": []}
            for _ in range(2):
                rates["floor"].append(floor(client))
                rates["engine"].append(engine(client, Path(folder)))
                print(f"floor {rates['floor'][-1]:,.0f} docs/s, engine {rates['engine'][-1]:,.0f} docs/s", flush=True)
            rates["naive"] = [naive(client)]
            print(f"naive {rates['naive'][0]:,.0f} docs/s", flush=True)
        expected = 1 + 2 * 2 + 1  # seeded 0, then two floor runs, two engine runs and the naive run
        if {s.get("n") for s in client.collection("items").select(["n"]).stream()} != {expected - 1}:
            raise SystemExit("a run did not update every document exactly once; the figures are void")
    finally:
        emulator.stop()
    best = {name: max(values) for name, values in rates.items()}
    vs_floor, vs_naive = best["engine"] / best["floor"], best["engine"] / best["naive"]
    result = {
        "goals": [
            {"name": "engine vs floor (stream + batched update), docs/s", "measured": f"{vs_floor:.2f}x",
             "goal": ">= 0.8x", "met": vs_floor >= 0.8},
            {"name": "engine vs naive get+update per document, docs/s", "measured": f"{vs_naive:.1f}x",
             "goal": ">= 10x", "met": vs_naive >= 10},
        ],
        "details": {"documents": DOCUMENTS, "docs_per_second": {k: [round(v) for v in vals] for k, vals in
                                                                rates.items()},
                    "best": {k: round(v) for k, v in best.items()}},
    }
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    for goal in result["goals"]:
        print(f"{goal['name']}: {goal['measured']} (goal {goal['goal']}) {'met' if goal['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Example data for the example domain (users, problems, sessions) in its *original* shape, before any
migration in functions/migrations ran: `make seed` writes it to the local emulator so the shipped
migrations have something to change (`make migrate-plan`, then `make migrate` or `make deploy`).

Deterministic (a seeded random), so a plan shows the same figures on every machine.
"""

from __future__ import annotations

import datetime as dt
import random

FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tony", "Hedy", "Linus"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Hoare"]
TOPICS = ["arrays", "graphs", "strings", "dynamic-programming", "math", "trees", "sorting", "geometry"]


def example_data(users: int = 40, problems: int = 15, sessions: int = 120, seed: int = 7) -> dict[str, dict]:
    """path -> document data, in the shape the first migration expects."""
    rnd = random.Random(seed)
    start = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
    docs: dict[str, dict] = {}
    for i in range(users):
        name = f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
        docs[f"users/u{i:04d}"] = {"name": name, "email": f"{name.lower().replace(' ', '.')}.{i}@example.com",
                                   "created_at": start + dt.timedelta(hours=7 * i)}
    for i in range(problems):
        docs[f"problems/p{i:04d}"] = {"title": f"Problem {i + 1}", "difficulty": rnd.choice(["easy", "medium", "hard"]),
                                      "tags": rnd.sample(TOPICS, k=2), "points": rnd.choice([10, 20, 50])}
    for i in range(sessions):
        began = start + dt.timedelta(hours=3 * i)
        attempts = [{"answer": f"attempt {n + 1}", "correct": n == 2, "at": began + dt.timedelta(minutes=4 * n)}
                    for n in range(rnd.randint(0, 4))]
        docs[f"sessions/s{i:05d}"] = {"user_id": f"u{rnd.randrange(users):04d}",
                                      "problem_id": f"p{rnd.randrange(problems):04d}", "started_at": began,
                                      "status": "solved" if any(a["correct"] for a in attempts) else "open",
                                      "attempts": attempts}
    return docs


def write(client, docs: dict[str, dict]) -> int:
    batch, pending = client.batch(), 0
    for path, data in docs.items():
        batch.set(client.document(path), data)
        pending += 1
        if pending == 500:
            batch.commit()
            batch, pending = client.batch(), 0
    if pending:
        batch.commit()
    return len(docs)

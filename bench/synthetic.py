"""Synthetic but realistic data for benchmarks: actors, and developments with 2-4 actors,
1-3 effects and a quoted source, dated over a century with a mix of date precisions."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

from events.vocabulary import CATEGORIES, CERTAINTIES, ROLES

ACTORS = 500
CATEGORY_NAMES = list(CATEGORIES)


ONE_WRITE = {"title": "Benchmark development", "category": "statement", "when": "2023-09-19",
             "certainty": "reported", "actors": [{"actor": "armenia", "role": "speaker"}],
             "sources": [{"citation": "bench", "quote": "q"}]}
"""The development the write benchmarks send again and again (it names the seed's Armenia)."""


def actor_slug(i: int) -> str:
    return f"actor-{i}"


def actor_commands() -> Iterator[dict]:
    for i in range(ACTORS):
        yield {"register_actor": {"id": actor_slug(i), "name": f"Actor {i}", "kind": "state",
                                  "names": {"de": f"Akteur {i}", "ru": f"Актор {i}"}}}


def when(rng: random.Random) -> str:
    year, month, day = rng.randint(1925, 2024), rng.randint(1, 12), rng.randint(1, 28)
    shape = rng.random()
    if shape < 0.7:
        return f"{year}-{month:02d}-{day:02d}"
    if shape < 0.85:
        return f"{year}-{month:02d}"
    if shape < 0.9:
        return f"{year}-{month:02d}-{day:02d}~"
    if shape < 0.95:
        return f"[{year}-{month:02d}-01..{year}-{month:02d}-10]"
    return f"{year}-{month:02d}-{day:02d}/{year}-{month:02d}-28"


def development(rng: random.Random, i: int) -> dict:
    actors = rng.sample(range(ACTORS), rng.randint(2, 4))
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "title": f"Development {i}: Paschinjan, Пашинян, Փաշինյան",
        "summary": "A synthetic development for benchmarks. " * 3,
        "language": "en",
        "category": rng.choice(CATEGORY_NAMES),
        "when": when(rng),
        "certainty": rng.choice(CERTAINTIES),
        "actors": [{"actor": actor_slug(a), "role": rng.choice(ROLES)} for a in actors],
        "sources": [{"citation": "Synthetic source", "quote": "A short verbatim quote.", "locator": "p. 1"}],
        "effects": effects(rng, actors),
        "tags": ["synthetic"],
    }


def effects(rng: random.Random, actors: list[int]) -> list[dict]:
    """1-3 effects, each (actor, attribute) once: a development may not set one twice."""
    drawn: dict[tuple[str, str], object] = {}
    for _ in range(rng.randint(1, 3)):
        key = (actor_slug(rng.choice(actors)), f"attr.{rng.randint(0, 20)}")
        drawn.setdefault(key, rng.choice(["a", "b", None]))
    return [{"actor": actor, "attribute": attribute, "value": value} for (actor, attribute), value in drawn.items()]


def development_commands(n: int, seed: int = 1) -> Iterator[dict]:
    rng = random.Random(seed)
    for i in range(n):
        yield {"record_development": development(rng, i)}


def write_commands(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for command in (*actor_commands(), *development_commands(n)):
            out.write(json.dumps(command, ensure_ascii=False) + "\n")
    return path

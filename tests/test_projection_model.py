"""Stateful property test of the projections.

Hypothesis drives random sequences of register / record / correct / add-source /
retract / restore commands. After every step the incrementally maintained views must
equal a clean rebuild, and equal a naive in-memory recomputation from the raw event
list; and the record as of any earlier position must equal that recomputation over the
events up to that position.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from events.development import Development
from events.vocabulary import CATEGORIES, QUAD_CLASSES
from events.errors import InvalidInput
from tests.conftest import POSTGRES, drop_schema, postgres_or_skip
from timeline.projector import differences
from timeline.queries import TREND_DAYS, TimelineQuery
from timeline.service import Service

SLUGS = ["aa", "bb", "cc"]
WHENS = ["2023-09-01", "2023-09", "2023-09-19", "[2023-09-01..2023-09-10]", "2023-09-11/2023-09-20",
         "2022", "2023-09-05~"]
DAYS = ["2022-06-01", "2023-09-01", "2023-09-05", "2023-09-15", "2023-09-30"]
SOURCE = {"citation": "A source", "quote": "A quote"}

effects = st.lists(
    st.fixed_dictionaries({"actor": st.sampled_from(SLUGS), "attribute": st.sampled_from(["x", "y.z"]),
                           "value": st.sampled_from(["one", "two", None])}),
    max_size=2, unique_by=lambda e: (e["actor"], e["attribute"]))


categories = st.sampled_from(["statement", "aid", "assault", "consult"])
actors = st.lists(st.sampled_from(SLUGS), min_size=1, max_size=3, unique=True).map(
    lambda slugs: [{"actor": slug, "role": "participant"} for slug in slugs])


def naive_record(events: list[tuple[object, int]]) -> dict[str, dict]:
    """Developments as the raw events say, computed the obvious way."""
    record: dict[str, dict] = {}
    for event, position in events:
        ident = str(event.originator_id)
        if isinstance(event, Development.Recorded):
            record[ident] = {"title": event.title, "earliest": event.earliest, "latest": event.latest,
                             "category": event.category, "actors": event.actors, "effects": event.effects,
                             "first": position, "version": 1, "retracted": False}
            continue
        if ident not in record:
            continue
        development = record[ident]
        development["version"] = event.originator_version
        if isinstance(event, Development.Corrected):
            development.update({k: v for k, v in event.changes.items() if k in development})
        elif isinstance(event, Development.Retracted):
            development["retracted"] = True
        elif isinstance(event, Development.Restored):
            development["retracted"] = False
    return record


def naive_timeline(record: dict[str, dict], actors: set[str] | None = None,
                   descending: bool = False) -> list[tuple[str, int, str]]:
    """The current developments in timeline order; with ``actors``, those of any of them."""
    current = [(d["earliest"], d["latest"], d["first"], i) for i, d in record.items() if not d["retracted"]
               and (actors is None or actors & {part["actor"] for part in d["actors"]})]
    return [(i, record[i]["version"], record[i]["title"]) for *_, i in sorted(current, reverse=descending)]


def naive_relations(record: dict[str, dict], actor: str, at: str) -> dict[str, tuple]:
    """Per other actor: developments, counts by quad class, score, last development, and
    the scores of the two trend windows."""
    day = date.fromisoformat(at)
    recent_from, before_from = (str(day - timedelta(days=days)) for days in (TREND_DAYS, 2 * TREND_DAYS))
    shared: dict[str, list[tuple[str, int, str, dict]]] = {}
    for ident, development in record.items():
        slugs = {part["actor"] for part in development["actors"]}
        if development["retracted"] or development["earliest"] > at or actor not in slugs:
            continue
        for other in slugs - {actor}:
            shared.setdefault(other, []).append((development["earliest"], development["first"], ident, development))
    relations = {}
    for other, developments in shared.items():
        weights = [(CATEGORIES[d["category"]], earliest) for earliest, _, _, d in developments]
        relations[other] = (
            len(developments),
            {quad: sum(info.quad_class == quad for info, _ in weights) for quad in QUAD_CLASSES},
            sum(info.weight for info, _ in weights),
            max(developments)[2],
            sum(info.weight for info, earliest in weights if earliest > recent_from),
            sum(info.weight for info, earliest in weights if before_from < earliest <= recent_from),
        )
    return relations


def found_relations(state: dict) -> dict[str, tuple]:
    return {other: (r["developments"], r["counts"], r["score"], r["last"]["development"], r["recent_score"],
                    r["previous_score"]) for other, r in state["relations"].items()}


def naive_attributes(record: dict[str, dict], actor: str, at: str) -> dict[str, tuple[str, str]]:
    chosen: dict[str, tuple[tuple[str, int], object, str]] = {}
    for ident, development in record.items():
        if development["retracted"] or development["earliest"] > at:
            continue
        for effect in development["effects"]:
            key = (development["earliest"], development["first"])
            if effect["actor"] == actor and (effect["attribute"] not in chosen
                                             or chosen[effect["attribute"]][0] < key):
                chosen[effect["attribute"]] = (key, effect["value"], ident)
    return {name: (value, ident) for name, (_, value, ident) in chosen.items() if value is not None}


class RecordMachine(RuleBasedStateMachine):
    database_url = "sqlite:///:memory:"
    developments = Bundle("developments")

    @initialize()
    def open_store(self):
        self.schema = None
        url = self.database_url
        if url.startswith("postgresql"):
            self.schema = f"model_{uuid.uuid4().hex[:12]}"
            url = f"{url}?schema={self.schema}"
        # Through the service, as the API writes: each write is projected by its group
        # commit from the events as saved, and the invariants compare that with a
        # rebuild from the stored events.
        self.service = Service({"TIMELINE_DATABASE_URL": url})
        self.chronicle, self.projector = self.service.chronicle, self.service.projector
        self.reader = self.service.reader
        for slug in SLUGS:
            self.chronicle.register_actor({"id": slug, "name": slug.upper(), "kind": "state"}, recorded_by="t")
        self.projector.catch_up()

    def teardown(self):
        if hasattr(self, "service"):
            self.service.close()
        if getattr(self, "schema", None):
            drop_schema(self.schema)

    def _write(self, command, *args, **kwargs):
        """Runs a command; a refused one must leave the log as it was."""
        before = self.chronicle.recorder.max_notification_id()
        try:
            getattr(self.chronicle, command)(*args, recorded_by="t", **kwargs)
        except InvalidInput:
            assert self.chronicle.recorder.max_notification_id() == before
        self.projector.catch_up()

    @rule(target=developments, title=st.sampled_from(["Alpha", "Beta", "Gamma"]), when=st.sampled_from(WHENS),
          category=categories, actors=actors, effects=effects)
    def record(self, title, when, category, actors, effects):
        receipt = self.chronicle.record_development(
            {"title": title, "category": category, "when": when, "certainty": "reported", "actors": actors,
             "sources": [SOURCE], "effects": effects}, recorded_by="t")
        self.projector.catch_up()
        return receipt.id

    @rule(development=developments, title=st.sampled_from(["Alpha", "Delta"]), when=st.sampled_from(WHENS),
          effects=effects, more=st.fixed_dictionaries({}, optional={"category": categories, "actors": actors}))
    def correct(self, development, title, when, effects, more):
        self._write("correct_development", development, {"title": title, "when": when, "effects": effects, **more},
                    reason="better sources")

    @rule(development=developments)
    def add_source(self, development):
        self._write("add_source", development, {"citation": "Another source"})

    @rule(development=developments)
    def retract(self, development):
        self._write("retract_development", development, reason="wrong")

    @rule(development=developments)
    def restore(self, development):
        self._write("restore_development", development, reason="right after all")

    def _events(self):
        recorder = self.chronicle.recorder
        notifications = recorder.select_notifications(0, 100_000, inclusive_of_start=False)
        return [(self.chronicle.mapper.to_domain_event(n), n.id) for n in notifications]

    def _timeline(self, as_of=None):
        page = self.reader.timeline(TimelineQuery(limit=500, as_of=as_of))
        return [(d["id"], d["version"], d["title"]) for d in page.items]

    def _actors_timeline(self, actors, order):
        """Every page of two of the timeline of some actors (one actor's rows are walked,
        several actors' walks merged), following the cursor."""
        found, cursor = [], None
        while True:
            page = self.reader.timeline(TimelineQuery(actors=actors, order=order, limit=2, cursor=cursor))
            found += [(d["id"], d["version"], d["title"]) for d in page.items]
            if (cursor := page.next_cursor) is None:
                return found

    @invariant()
    def views_equal_a_clean_rebuild(self):
        if hasattr(self, "chronicle"):
            assert differences(self.chronicle) == []

    def _relations_both_ways(self, slug, day):
        """The relations summed up to the day, and from the totals less the later pairs
        (the reader takes the cheaper way; here, each in turn)."""
        found = []
        for totals in (True, False):
            self.reader._totals_are_cheaper = lambda *_, totals=totals: ("1 = 1" if totals else "1 = 0", [])
            found.append(found_relations(self.reader.actor_state(slug, at=day)))
        del self.reader._totals_are_cheaper
        return found

    @invariant()
    def views_equal_the_naive_recomputation(self):
        if not hasattr(self, "chronicle"):
            return
        record = naive_record(self._events())
        assert self._timeline() == naive_timeline(record)
        for actors in [[slug] for slug in SLUGS] + [SLUGS[:2], SLUGS[1:], SLUGS]:
            for order in ("asc", "desc"):
                expected = naive_timeline(record, set(actors), descending=order == "desc")
                assert self._actors_timeline(actors, order) == expected, (actors, order)
        for slug in SLUGS:
            for day in DAYS:
                state = self.reader.actor_state(slug, at=day)
                found = {k: (v["value"], v["development"]) for k, v in state["attributes"].items()}
                assert found == naive_attributes(record, slug, day), (slug, day)
                for relations in self._relations_both_ways(slug, day):
                    assert relations == naive_relations(record, slug, day), (slug, day)

    @invariant()
    def the_past_equals_a_rebuild_up_to_then(self):
        if not hasattr(self, "chronicle"):
            return
        events = self._events()
        for _, position in events[-4:]:
            record = naive_record([(e, p) for e, p in events if p <= position])
            assert self._timeline(as_of=position) == naive_timeline(record), position
            for slug in SLUGS:
                state = self.reader.actor_state(slug, at="2023-09-30", as_of=position)
                if state is None:  # not registered yet at that position
                    continue
                found = {k: (v["value"], v["development"]) for k, v in state["attributes"].items()}
                assert found == naive_attributes(record, slug, "2023-09-30")
                assert found_relations(state) == naive_relations(record, slug, "2023-09-30"), (slug, position)


SETTINGS = settings(max_examples=int(os.environ.get("TIMELINE_MODEL_EXAMPLES", "25")), stateful_step_count=12,
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_projections_on_sqlite():
    RecordMachine.TestCase.settings = SETTINGS
    RecordMachine.database_url = "sqlite:///:memory:"
    RecordMachine.TestCase().runTest()


@pytest.mark.postgres
def test_projections_on_postgres():
    postgres_or_skip()

    class OnPostgres(RecordMachine):
        database_url = POSTGRES

    OnPostgres.TestCase.settings = settings(SETTINGS, max_examples=max(5, SETTINGS.max_examples // 3))
    OnPostgres.TestCase().runTest()

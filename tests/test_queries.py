"""Read queries over the projections: the timeline (order, filters, free text, keyset
pagination, record time), a development's versions and history, actor state (attributes,
relations, involvement) and actor search. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from events.chronicle import Chronicle
from events.vocabulary import CATEGORIES, QUAD_CLASSES
from timeline import queries as queries_module, transfer
from timeline.projector import Projector
from timeline.queries import BadQuery, Reader, TimelineQuery, parse_as_of

ACTORS = [
    {"id": "armenia", "name": "Armenia", "kind": "state", "names": {"ru": "Армения", "hy": "Հայաստան"},
     "aliases": ["Republic of Armenia"]},
    {"id": "azerbaijan", "name": "Azerbaijan", "kind": "state", "names": {"az": "Azərbaycan"}},
    {"id": "russia", "name": "Russia", "kind": "state", "names": {"ru": "Россия"}},
    {"id": "pashinyan", "name": "Nikol Pashinyan", "kind": "person",
     "names": {"hy": "Նիկոլ Փաշինյան", "ru": "Никол Пашинян"}, "aliases": ["Paşinyan"]},
]
SOURCE = {"citation": "Reuters, 19 September 2023"}

# Seed developments used below.
MEDVEDEV_THREATENS_PASHINYAN = "21c0e8ac-16a5-57e0-9f80-080cc59151be"
CSTO_MEMBERSHIP = "7400c252-de3f-5f30-8c4c-4bc86d3060c5"
CSTO_REPRESENTATIVE_WITHDRAWN = "739bab14-6978-5ec4-a51d-4c795e78602f"
EXERCISE_WITH_US = "88420b86-1939-5b99-be20-ce19c48a6274"


def development(**overrides: Any) -> dict[str, Any]:
    """A valid development; each keyword replaces a field."""
    return {
        "title": "Azerbaijan launches a military operation",
        "category": "assault",
        "when": "2023-09-19",
        "certainty": "confirmed",
        "actors": [{"actor": "azerbaijan", "role": "initiator"}, {"actor": "armenia", "role": "target"}],
        "sources": [SOURCE],
    } | overrides


def parts(*pairs: str) -> list[dict[str, str]]:
    """``parts("russia:initiator", "armenia:target")`` -> the ``actors`` field."""
    return [{"actor": a, "role": r} for a, r in (pair.split(":") for pair in pairs)]


def effect(actor: str, attribute: str, value: Any) -> dict[str, Any]:
    return {"actor": actor, "attribute": attribute, "value": value}


class Store:
    """A chronicle with its projections and a reader; every write is projected at once."""

    def __init__(self, chronicle: Chronicle, projector: Projector):
        self.chronicle = chronicle
        self.projector = projector
        self.reader = Reader(projector)

    def write(self, command: str, *args: Any, by: str = "alice", **kwargs: Any) -> int:
        """Runs a chronicle command, projects it, returns its log position."""
        receipt = getattr(self.chronicle, command)(*args, recorded_by=by, **kwargs)
        self.projector.catch_up()
        return receipt.position

    def record(self, **overrides: Any) -> str:
        receipt = self.chronicle.record_development(development(**overrides), recorded_by="alice")
        self.projector.catch_up()
        return receipt.id

    def position(self) -> int:
        return self.projector.position()

    def page(self, **query: Any):
        return self.reader.timeline(TimelineQuery(**query))

    def ids(self, **query: Any) -> list[str]:
        return [item["id"] for item in self.page(limit=1000, **query).items]

    def titles(self, **query: Any) -> list[str]:
        return [item["title"] for item in self.page(limit=1000, **query).items]

    def walk(self, **query: Any) -> tuple[list[str], list[Any]]:
        """Every page, following ``next_cursor``: the ids in order, and each page's as_of."""
        ids, pinned, cursor = [], [], None
        for _ in range(100):
            page = self.page(cursor=cursor, **query)
            ids += [item["id"] for item in page.items]
            pinned.append(page.as_of)
            if page.next_cursor is None:
                return ids, pinned
            cursor = page.next_cursor
        raise AssertionError(f"pagination does not end: {ids[:20]}...")


@pytest.fixture
def empty(chronicle: Chronicle) -> Store:
    projector = Projector(chronicle)
    yield Store(chronicle, projector)
    projector.close()


@pytest.fixture
def store(empty: Store) -> Store:
    """A store with Armenia, Azerbaijan, Russia and Pashinyan registered, and projected."""
    empty.chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    empty.projector.catch_up()
    return empty


@pytest.fixture
def seeded(empty: Store) -> Store:
    """A store with the shipped seed loaded and projected."""
    with open(transfer.SEED, encoding="utf-8") as stream:
        report = transfer.import_commands(empty.chronicle, transfer.read_lines(stream), recorded_by="seed")
    assert report.stored > 50 and not report.problems
    empty.projector.catch_up()
    return empty


# --- the timeline: a hand-made September 2023 -------------------------------------------

SEPTEMBER = {
    "A": development(title="Azerbaijan launches an offensive near Ağdam", tags=["escalation"]),
    "B": development(title="Kremlin: «Ситуация под контролем»", category="statement", when="2023-09",
                     certainty="reported", actors=parts("russia:speaker", "armenia:subject")),
    "C": development(title="Yerevan appeals to Russian peacekeepers", category="appeal",
                     actors=parts("armenia:initiator", "russia:target")),
    "D": development(title="Exercise Eagle_Partner 2023 begins", category="cooperate",
                     when="[2023-09-11..2023-09-20]", certainty="claimed", tags=["exercise", "escalation"],
                     actors=parts("armenia:initiator")),
    "E": development(title="Prime minister calls the alliance a 100% failure", category="accuse",
                     when="2023-09-21", actors=parts("pashinyan:speaker", "russia:target")),
    "F": development(title="Talks on 100 prisoners; Eagle Partner criticised", category="consult",
                     when="2023-09-01/2023-09-30", actors=parts("azerbaijan:participant", "armenia:participant")),
}
"""Recorded in this order. Timeline order (earliest, latest, first position): B and F both
span the whole month (B recorded first), then D (11th-20th), A and C on the 19th (A first),
then E on the 21st."""
ASCENDING = list("BFDACE")


@pytest.fixture
def september(store: Store) -> dict[str, str]:
    """Letter -> development id, for :data:`SEPTEMBER` recorded in order."""
    return {letter: store.record(**details) for letter, details in SEPTEMBER.items()}


def letters(september: dict[str, str], ids: list[str]) -> list[str]:
    by_id = {ident: letter for letter, ident in september.items()}
    return [by_id[ident] for ident in ids]


@pytest.mark.parametrize("order, expected", [("asc", ASCENDING), ("desc", ASCENDING[::-1])], ids=["asc", "desc"])
def test_timeline_orders_by_earliest_latest_and_first_position(store, september, order, expected):
    assert letters(september, store.ids(order=order)) == expected


@pytest.mark.parametrize("limit", [1, 2, 5, 6, 7])
def test_limit_cuts_the_listing_and_offers_a_cursor_only_when_more_remain(store, september, limit):
    page = store.page(limit=limit)
    assert letters(september, [item["id"] for item in page.items]) == ASCENDING[:limit]
    assert (page.next_cursor is not None) == (limit < len(ASCENDING))


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 4])
def test_pages_concatenate_to_the_unpaginated_listing(store, september, order, limit):
    ids, pinned = store.walk(order=order, limit=limit)
    assert ids == store.ids(order=order)
    assert len(set(ids)) == len(ids) == len(september)
    assert pinned == [pinned[0]] * -(-len(september) // limit)


def test_paginated_filtered_listing_matches_the_unpaginated_one(store, september):
    ids, _ = store.walk(actors=["armenia"], date_from="2023-09-15", limit=1)
    assert letters(september, ids) == letters(september, store.ids(actors=["armenia"], date_from="2023-09-15"))
    assert letters(september, ids) == ["B", "F", "D", "A", "C"]


def test_pagination_follows_the_record_time_of_its_first_page(store, september):
    """Between two page requests a development is recorded in the middle of the listing,
    an already listed one is moved after the cursor, and one not yet listed is moved
    before it: later pages still show the record as the first page saw it."""
    first = store.page(limit=2)
    assert letters(september, [item["id"] for item in first.items]) == ["B", "F"]
    store.record(title="Recorded between pages", when="2023-09-15")
    store.write("correct_development", september["B"], {"when": "2023-09-25"}, reason="wrong month")
    store.write("correct_development", september["E"], {"when": "2023-08-01", "title": "Moved"},
                reason="wrong day")
    ids = [item["id"] for item in first.items]
    cursor = first.next_cursor
    titles = []
    while cursor and len(ids) < 20:
        page = store.page(limit=2, cursor=cursor)
        assert page.as_of == first.as_of
        ids += [item["id"] for item in page.items]
        titles += [item["title"] for item in page.items]
        cursor = page.next_cursor
    assert letters(september, ids) == ASCENDING
    assert "Moved" not in titles
    assert ids == store.ids(as_of=first.as_of)
    assert store.ids() != ids  # while the current record has changed


def test_a_correction_just_before_the_first_page_is_read_shows_on_it(store, monkeypatch):
    """The first page of the current record reads the position that pins it in the same
    statement as its rows: a correction committed just before that statement shows on
    the page, corrected, and the next page, pinned to the same position, agrees. (Read
    apart, the position came before the correction and the rows after it: the corrected
    development was on neither.)"""
    days = [store.record(title=f"Day {day}", when=f"1990-01-0{day}") for day in (1, 2, 3)]
    read = store.reader._select

    def corrected_first(statement: str, params: Any = (), **options: Any) -> Any:
        monkeypatch.setattr(store.reader, "_select", read)
        store.write("correct_development", days[1], {"title": "Day 2, corrected"}, reason="wording")
        return read(statement, params, **options)

    monkeypatch.setattr(store.reader, "_select", corrected_first)
    window = {"date_from": "1990-01-01", "date_to": "1990-01-31", "limit": 2}
    first = store.page(**window)
    assert [item["title"] for item in first.items] == ["Day 1", "Day 2, corrected"]
    assert first.as_of == store.position()
    following = store.page(**window, cursor=first.next_cursor)
    assert [item["title"] for item in following.items] == ["Day 3"] and following.next_cursor is None


def test_a_correction_between_the_text_index_and_the_page_does_not_empty_the_page(store, monkeypatch):
    """Free text reads the versions the text index finds, then the page: both in one
    state of the store, so a correction landing between them leaves the page as the
    record stood when the search began (read apart, the version found was superseded
    before the page was read, and the page was empty)."""
    ident = store.record(title="Zebrafisch gesichtet", when="1990-02-01")
    before = store.position()
    read = store.reader._select

    def corrected_after_the_first(statement: str, params: Any = (), **options: Any) -> Any:
        monkeypatch.setattr(store.reader, "_select", read)
        rows = read(statement, params, **options)
        store.write("correct_development", ident, {"title": "Zebrafisch gesichtet, bestätigt"}, reason="wording")
        return rows

    monkeypatch.setattr(store.reader, "_select", corrected_after_the_first)
    page = store.page(q="zebrafisch")
    assert [item["title"] for item in page.items] == ["Zebrafisch gesichtet"] and page.as_of == before
    assert [item["title"] for item in store.page(q="zebrafisch").items] == ["Zebrafisch gesichtet, bestätigt"]


@pytest.mark.parametrize("beyond", [10**6, "2999-01-01T00:00:00Z"], ids=["position", "timestamp"])
def test_a_record_time_beyond_the_end_is_pinned_as_the_record_now(store, september, beyond):
    """Pinned as given, the pages after the first showed what was written meanwhile."""
    first = store.page(limit=2, as_of=parse_as_of(beyond))
    now = store.position() if isinstance(beyond, int) else datetime.now(timezone.utc).isoformat()
    assert first.as_of <= now
    store.write("correct_development", september["E"], {"when": "2023-08-01", "title": "Moved"}, reason="wrong day")
    ids, cursor = [item["id"] for item in first.items], first.next_cursor
    while cursor:
        page = store.page(limit=2, cursor=cursor)
        ids += [item["id"] for item in page.items]
        cursor = page.next_cursor
    assert letters(september, ids) == ASCENDING


@pytest.mark.parametrize("beyond", [10**6, "2999-01-01T00:00:00Z"], ids=["position", "timestamp"])
def test_a_cursor_made_by_hand_beyond_the_end_is_pinned_as_the_record_now(store, september, beyond):
    """A cursor is not signed: one written by hand with a record time beyond the end is
    taken as the record now, as such an ``as_of`` is, so the pages after it are pinned."""
    key, _ = json.loads(base64.urlsafe_b64decode(store.page(limit=2).next_cursor + "=="))
    forged = base64.urlsafe_b64encode(json.dumps([key, beyond]).encode()).decode()
    second = store.page(limit=2, cursor=forged)
    now = store.position() if isinstance(beyond, int) else datetime.now(timezone.utc).isoformat()
    assert second.as_of <= now
    store.write("correct_development", september["E"], {"when": "2023-08-01", "title": "Moved"}, reason="wrong day")
    ids, cursor = [item["id"] for item in second.items], second.next_cursor
    while cursor:
        page = store.page(limit=2, cursor=cursor)
        ids += [item["id"] for item in page.items]
        cursor = page.next_cursor
    assert letters(september, ids) == ASCENDING[2:]


@pytest.mark.parametrize("cursor", [
    "garbage",
    "%%%",
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(b'[["2023-09-01", "2023-09-30", "x"], 5]').decode(),
    base64.urlsafe_b64encode(b'[["2023-09-01", "2023-09-30", 5], "not a time"]').decode(),
    base64.urlsafe_b64encode(b'{"a": 1, "b": 2}').decode(),
], ids=["word", "not-base64", "short-list", "position-not-int", "bad-as-of", "object"])
def test_a_cursor_not_given_out_is_a_bad_query(store, september, cursor):
    with pytest.raises(BadQuery) as caught:
        store.page(cursor=cursor)
    assert caught.value.field == "cursor"


@pytest.mark.parametrize("query, expected", [
    ({"actors": ["russia"]}, "BCE"),
    ({"actors": ["russia", "azerbaijan"]}, "ABCEF"),
    ({"actors": ["armenia"], "role": "target"}, "A"),
    ({"actors": ["armenia", "russia"], "role": "initiator"}, "CD"),
    ({"actors": ["pashinyan"], "role": "target"}, ""),
    ({"role": "speaker"}, "BE"),
    ({"categories": ["assault", "appeal"]}, "AC"),
    ({"categories": ["statement"]}, "B"),
    ({"tags": ["escalation"]}, "AD"),
    ({"tags": ["exercise", "nothing"]}, "D"),
    ({"certainties": ["claimed", "reported"]}, "BD"),
    ({"date_from": "2023-09-15", "date_to": "2023-09-20"}, "ABCDF"),
    ({"date_from": "2023-09-15", "date_to": "2023-09-20", "match": "within"}, "AC"),
    ({"date_from": "2023-09-01", "date_to": "2023-09-30", "match": "within"}, "ABCDEF"),
    ({"date_from": "2023-09-20"}, "BDEF"),
    ({"date_to": "2023-09-10"}, "BF"),
    ({"date_from": "2023-09-20", "match": "within"}, "E"),
    ({"date_from": "2023-10-01"}, ""),
    ({"actors": ["armenia"], "categories": ["cooperate", "assault"], "date_to": "2023-09-15"}, "D"),
], ids=lambda value: value if isinstance(value, str) else "-".join(f"{k}={v}" for k, v in value.items()))
def test_filters(store, september, query, expected):
    assert sorted(letters(september, store.ids(**query))) == list(expected)


def test_a_month_overlaps_days_within_it_but_is_not_within_them(store):
    month = store.record(when="2023-09")
    days = {"date_from": "2023-09-15", "date_to": "2023-09-20"}
    assert store.ids(**days) == [month]
    assert store.ids(**days, match="within") == []


def search(q: str, expected: str, name: str | None = None, bug: str | None = None) -> Any:
    """A free-text case, named by its query (or ``name``); ``bug`` marks it as a known bug."""
    marks = [pytest.mark.xfail(reason=f"BUG: {bug}", strict=True)] if bug else []
    return pytest.param(q, expected, id=name or q, marks=marks)


@pytest.mark.parametrize("q, expected", [
    search("kremlin", "B"),
    search("KREMLIN", "B"),
    search("СИТУАЦИЯ", "B", "cyrillic-upper-case"),  # Unicode case folding, not only ASCII
    search("agdam", "A"),  # accents are ignored
    search("AĞDAM", "A", "AGDAM-with-breve"),
    search("Пашинян", "E", "russian-name"),  # an actor's name in any language
    search("Փաշինյան", "E", "armenian-name"),
    search("PASINYAN", "E"),  # an actor's alias, without its accent
    search("Армения", "ABCDF", "russian-name-of-armenia"),
    search("محمد", "G", "arabic-without-vowel-marks"),
    search("100%", "E"),  # % is literal, not a wildcard
    search("eagle_partner", "D"),  # _ is literal, not a wildcard
    search("nowhere", ""),
])
def test_free_text(store, september, q, expected):
    september["G"] = store.record(title="Statement by Muhammad (مُحَمَّد)", when="2024-01-01",
                                  actors=parts("russia:speaker"))
    assert sorted(letters(september, store.ids(q=q))) == list(expected)


def test_free_text_combines_with_other_filters(store, september):
    assert letters(september, store.ids(q="eagle", categories=["consult"])) == ["F"]


@pytest.mark.parametrize("q", ["Paschinjan", "Пашинян", "Փաշինյան"])
def test_free_text_finds_the_seed_developments_pashinyan_takes_part_in(seeded, q):
    found = set(seeded.ids(q=q))
    assert MEDVEDEV_THREATENS_PASHINYAN in found
    assert set(seeded.ids(actors=["pashinyan"])) <= found


@pytest.mark.parametrize("q, expected", [
    search("ğd", "A", "two-letters-with-breve"),  # shorter than a trigram: read in timeline order
    search("AG", "ADF", "two-letters-upper-case"),  # Ağdam, Eagle
    search("%", "E", "one-letter-percent"),
    search("_", "D", "one-letter-underscore"),
    search("ю", "", "one-letter-no-match"),
    search("ağd", "A", "three-letters"),  # one trigram
    search("ĞDA", "A", "three-letters-upper-case"),
    search("e p", "F", "three-letters-with-a-space"),
    search("ЯСНО", "G", "cyrillic-in-the-summary"),
    search("ՍՏԵՓԱՆԱԿԵՐՏ", "G", "armenian-upper-case"),  # Armenian has case too
    search("ստեփանակերտ", "G", "armenian-lower-case"),
    search('says "no', "G", "double-quotes"),  # not FTS syntax
    search("n OR 1", "", "fts-operator"),
    search("hayastan", "ABCDF", "alias-given-below"),
    search("Հայաստան", "ABCDF", "armenian-name-of-armenia"),
])
def test_free_text_of_any_length_and_script(store, september, q, expected):
    store.write("correct_actor", "armenia", {"aliases": ["Republic of Armenia", "Hayastan"]}, reason="alias")
    september["G"] = store.record(title='Kremlin says "no" to Ստեփանակերտ', summary="Всё ясно.", when="2024-01-01",
                                  actors=parts("russia:speaker"))
    assert sorted(letters(september, store.ids(q=q))) == list(expected)


@pytest.mark.parametrize("q", ["breaking", "BREAKING", "𝐁𝐑𝐄𝐀𝐊𝐈𝐍𝐆", "hadrut", "ℌadrut", "adr"])
def test_free_text_folds_letters_that_gain_a_case_when_decomposed(store, q):
    """Mathematical and letterlike capitals (often pasted from social media) decompose to
    plain capitals: folded once more, both stores find them whatever the case asked for
    (PostgreSQL's LIKE heeds case; SQLite's did not, so only SQLite found them)."""
    ident = store.record(title="𝐁𝐑𝐄𝐀𝐊𝐈𝐍𝐆: shelling near ℌadrut")
    store.write("register_actor", {"id": "outlet", "name": "𝐌𝐞𝐝𝐢𝐚 𝐎𝐮𝐭𝐥𝐞𝐭", "kind": "media"})
    assert store.ids(q=q) == [ident]
    assert [actor["id"] for actor in store.reader.actors("media outlet")] == ["outlet"]


def test_free_text_follows_corrections_and_record_time(store, september):
    """The index holds every version: a corrected title is found from the correction on,
    the old one until then."""
    before = store.position()
    store.write("correct_development", september["C"], {"title": "Yerevan asks Moscow for help"}, reason="wording")
    assert letters(september, store.ids(q="peacekeepers")) == []
    assert letters(september, store.ids(q="asks moscow")) == ["C"]
    assert letters(september, store.ids(q="peacekeepers", as_of=before)) == ["C"]
    assert letters(september, store.ids(q="asks moscow", as_of=before)) == []
    moment = store.reader.history(september["C"])[0]["recorded_at"]
    assert letters(september, store.ids(q="peacekeepers", as_of=parse_as_of(moment))) == ["C"]


def test_free_text_leaves_out_retracted_developments_until_restored(store, september):
    retracted = store.write("retract_development", september["D"], reason="hoax")
    assert store.ids(q="eagle_partner") == [] and store.ids(q="eagle") == [september["F"]]
    corrected = store.write("correct_development", september["D"], {"title": "Exercise Golden Eagle"}, reason="name")
    assert store.ids(q="golden eagle") == [] and store.ids(q="golden eagle", as_of=corrected) == []
    store.write("restore_development", september["D"], reason="it took place")
    assert store.ids(q="golden eagle") == [september["D"]]
    assert store.ids(q="golden eagle", as_of=retracted) == []
    assert store.ids(q="eagle_partner", as_of=retracted - 1) == [september["D"]]


@pytest.mark.parametrize("query", [
    {"q": "eagle"},
    {"q": "armenia"},  # by an actor's name: every development Armenia takes part in
    {"q": "армения", "date_from": "2023-09-15", "order": "desc"},
    {"q": "arm", "categories": ["appeal", "cooperate", "consult"]},
    {"q": "ar", "order": "desc"},
    {"q": "kremlin", "actors": ["russia"]},
    {"q": "armenia", "actors": ["armenia", "russia"], "role": "initiator"},
], ids=lambda query: "-".join(f"{k}={v}" for k, v in query.items()))
def test_free_text_pages_concatenate_to_the_unpaginated_listing(store, september, query):
    expected = [i for i in store.ids(**{k: v for k, v in query.items() if k != "q"}) if i in set(store.ids(q=query["q"]))]
    ids, _ = store.walk(limit=1, **query)
    assert ids == store.ids(**query) == expected
    assert ids


@pytest.mark.parametrize("common", [1, 3])
def test_common_free_text_is_read_in_timeline_order_with_the_same_result(store, september, monkeypatch, common):
    """Text the index finds in COMMON versions or more is matched while reading the
    timeline in order instead of from the candidates: the pages are the same."""
    queries = [{"q": "eagle"}, {"q": "armenia", "order": "desc"}, {"q": "армения", "date_from": "2023-09-15"},
               {"q": "arm", "categories": ["appeal", "cooperate", "consult"]}, {"q": "nowhere"}]
    expected = [store.walk(limit=2, **query) for query in queries]
    monkeypatch.setattr(queries_module, "COMMON", common)
    assert [store.walk(limit=2, **query) for query in queries] == expected


MANY_ACTORS = [
    {"actors": ["armenia", "azerbaijan"]},
    {"actors": ["russia", "united-states", "csto"], "order": "desc"},
    {"actors": ["armenia", "russia", "pashinyan"], "role": "target"},
    {"actors": ["armenia", "azerbaijan", "russia"], "categories": ["statement", "assault"], "date_from": "2023-09-15"},
    {"actors": ["armenia", "turkey"], "date_to": "2023-09-20", "match": "within", "q": "armen"},
    {"actors": ["azerbaijan", "putin", "nato"], "tags": ["nowhere"]},
]


def test_several_actors_walked_and_merged_give_the_pages_of_their_versions_sorted(seeded, monkeypatch):
    """Up to WALKED_ACTORS actors, each actor's rows are walked in timeline order and the
    walks merged (a development of several of them once); more actors, the versions of all
    of them are looked up and sorted. Both give the same pages, at any record time."""
    earlier = seeded.position() * 4 // 5
    queries = [*MANY_ACTORS, *({**query, "as_of": earlier} for query in MANY_ACTORS)]
    expected = [seeded.walk(limit=2, **query)[0] for query in queries]
    monkeypatch.setattr(queries_module, "WALKED_ACTORS", 1)
    assert [seeded.walk(limit=2, **query)[0] for query in queries] == expected
    assert [bool(ids) for ids in expected] == [True] * 5 + [False] + [True] * 5 + [False]
    assert len(set(expected[0])) == len(expected[0]) > 20  # each development once


@pytest.mark.postgres
def test_free_text_statements_are_planned_for_their_own_text_on_postgresql(monkeypatch):
    """psycopg prepares a statement from its fifth run on, and PostgreSQL may then use one
    generic plan for every text: the plan learned from rare texts made common ones five
    times slower. Free-text statements are never prepared; the others still are."""
    import uuid

    import psycopg

    from tests.conftest import POSTGRES, drop_schema, postgres_or_skip

    postgres_or_skip()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"{POSTGRES}?schema={schema}"})
    projector = Projector(chronicle)
    try:
        store = Store(chronicle, projector)
        store.chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
        for details in SEPTEMBER.values():
            store.record(**details)
        prepared: dict[bool, list[Any]] = {True: [], False: []}
        execute = psycopg.Cursor.execute

        def watched(self, query, params=None, *, prepare=None, **kwargs):
            prepared["search LIKE" in str(query)].append(prepare)
            return execute(self, query, params, prepare=prepare, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", watched)
        for _ in range(6):
            assert store.ids(q="armenia") and store.ids(actors=["armenia"])
        assert len(prepared[True]) >= 12 and set(prepared[True]) == {False}
        assert None in prepared[False], "statements without free text keep psycopg's preparing"
    finally:
        projector.close()
        chronicle.close()
        drop_schema(schema)


def test_a_corrected_category_moves_a_development_between_actor_filtered_timelines(store):
    """An actor filter checks the category on the actor's rows in the index, before the
    version is looked up: each version has rows of its own, with its own category."""
    ident = store.record(title="Talks", category="consult", actors=parts("armenia:initiator", "russia:target"))
    before = store.position()
    store.write("correct_development", ident, {"category": "assault"}, reason="it was an attack")
    for actors in (["armenia"], ["armenia", "russia"], ["russia", "azerbaijan"]):
        assert store.ids(actors=actors, categories=["assault", "aid"]) == [ident], actors
        assert store.ids(actors=actors, categories=["consult"]) == [], actors
        assert store.ids(actors=actors, categories=["consult"], as_of=before) == [ident], actors
        assert store.ids(actors=actors, categories=["assault"], as_of=before) == [], actors


def test_free_text_after_a_replay_equals_free_text_kept_up_to_date(store, september):
    store.write("correct_development", september["A"], {"title": "Azerbaijan attacks near Ağdam"}, reason="wording")
    store.write("retract_development", september["B"], reason="hoax")
    queries = ["ağdam", "attacks", "offensive", "kremlin", "Армения", "eagle", "ag"]
    live = {q: store.ids(q=q) for q in queries}
    store.projector.rebuild()
    assert {q: store.ids(q=q) for q in queries} == live
    if store.projector.view.dialect.name == "sqlite":  # the FTS5 index agrees with its content, the versions
        store.projector.view.execute(["INSERT INTO {search} ({search}) VALUES ('integrity-check')"],
                                     store.reader.tables)


# --- record time: as_of ---------------------------------------------------------------


@pytest.fixture
def lifecycle(store: Store) -> dict[str, Any]:
    """One development recorded, corrected, retracted and restored; positions of each."""
    before = store.position()
    ident = store.record(title="First title")
    recorded = store.position()
    corrected = store.write("correct_development", ident, {"title": "Second title"}, reason="typo", by="bob")
    retracted = store.write("retract_development", ident, reason="hoax", by="carol")
    restored = store.write("restore_development", ident, reason="confirmed after all", by="dave")
    return {"id": ident, "before": before, "recorded": recorded, "corrected": corrected,
            "retracted": retracted, "restored": restored}


@pytest.mark.parametrize("stage, title, retracted", [
    ("recorded", "First title", False),
    ("corrected", "Second title", False),
    ("retracted", "Second title", True),
    ("restored", "Second title", False),
])
def test_as_of_a_position_shows_the_version_current_then(store, lifecycle, stage, title, retracted):
    as_of = lifecycle[stage]
    assert store.titles(as_of=as_of) == ([] if retracted else [title])
    stated = store.reader.development(lifecycle["id"], as_of=as_of)
    assert (stated["title"], stated["retracted"], stated["id"]) == (title, retracted, lifecycle["id"])


def test_as_of_before_a_development_was_recorded_it_is_unknown(store, lifecycle):
    assert store.reader.development(lifecycle["id"], as_of=lifecycle["before"]) is None
    assert store.ids(as_of=lifecycle["before"]) == []


def test_current_state_is_the_last_version(store, lifecycle):
    assert store.titles() == ["Second title"]
    assert store.reader.development(lifecycle["id"])["retracted"] is False
    assert store.reader.development(lifecycle["id"])["version"] == 4


def test_as_of_a_timestamp_between_two_writes_equals_the_position_of_the_first(store, lifecycle):
    history = store.reader.history(lifecycle["id"])
    stages = ["recorded", "corrected", "retracted", "restored"]
    assert [entry["position"] for entry in history] == [lifecycle[s] for s in stages]
    moments = [datetime.fromisoformat(entry["recorded_at"]) for entry in history] + [None]
    for stage, moment, following in zip(stages, moments, moments[1:]):
        between = moment if following is None else moment + (following - moment) / 2
        as_of = parse_as_of(between.isoformat().replace("+00:00", "Z"))
        assert store.titles(as_of=as_of) == store.titles(as_of=lifecycle[stage]), stage
        assert store.reader.development(lifecycle["id"], as_of=as_of) == \
            store.reader.development(lifecycle["id"], as_of=lifecycle[stage]), stage


def test_timestamp_as_of_is_pinned_in_the_cursor(store, september):
    moment = store.reader.history(september["F"])[0]["recorded_at"]
    store.record(title="Later", when="2023-09-02")
    first = store.page(as_of=parse_as_of(moment), limit=3)
    ids, cursor = [item["id"] for item in first.items], first.next_cursor
    while cursor and len(ids) < 20:
        page = store.page(cursor=cursor, limit=3)
        assert page.as_of == first.as_of
        ids, cursor = ids + [item["id"] for item in page.items], page.next_cursor
    assert letters(september, ids) == ASCENDING


@pytest.mark.parametrize("value, expected", [
    ("42", 42),
    (42, 42),
    ("2023-09-20T12:00:00Z", "2023-09-20T12:00:00.000000+00:00"),
    ("2023-09-20T14:00:00+02:00", "2023-09-20T12:00:00.000000+00:00"),
    ("2023-09-20T12:00:00.123456Z", "2023-09-20T12:00:00.123456+00:00"),
    pytest.param("2023-09-20T12:00:00z", "2023-09-20T12:00:00.000000+00:00", id="lower-case-z"),
    (None, None),
    ("", None),
])
def test_parse_as_of_accepts_positions_and_rfc3339_timestamps(value, expected):
    assert parse_as_of(value) == expected


@pytest.mark.parametrize("value", [
    "2023-09-20T12:00:00",
    "2023-09-20",
    "yesterday",
    "12abc",
    "-1",
    pytest.param("²", id="superscript-two"),
])
def test_parse_as_of_rejects_naive_timestamps_and_junk(value):
    with pytest.raises(BadQuery) as caught:
        parse_as_of(value)
    assert caught.value.field == "as_of"


# --- retraction and history -------------------------------------------------------------


def test_retracted_developments_leave_current_timelines_but_keep_their_state(store, september):
    store.write("retract_development", september["A"], reason="duplicate")
    assert "A" not in letters(september, store.ids())
    assert store.ids(tags=["escalation"]) == [september["D"]]
    stated = store.reader.development(september["A"])
    assert stated["retracted"] is True and stated["title"] == SEPTEMBER["A"]["title"]


def test_history_lists_every_version_in_order(store):
    ident = store.record(title="Old")
    store.write("correct_development", ident, {"title": "New", "certainty": "reported"}, reason="typo", by="bob",
                sources=[{"citation": "AP"}])
    store.write("add_source", ident, {"citation": "AFP"}, by="carol")
    store.write("retract_development", ident, reason="hoax", by="dave")
    store.write("restore_development", ident, reason="it was not", by="erin")
    history = store.reader.history(ident)
    assert [(e["version"], e["type"], e["recorded_by"], e["reason"]) for e in history] == [
        (1, "recorded", "alice", None),
        (2, "corrected", "bob", "typo"),
        (3, "source_added", "carol", None),
        (4, "retracted", "dave", "hoax"),
        (5, "restored", "erin", "it was not"),
    ]
    assert history[0]["stated"]["title"] == "Old"
    assert history[0]["stated"]["sources"] == [SOURCE]
    assert history[1]["changes"] == {"title": "New", "certainty": "reported"}
    assert history[1]["sources"] == [{"citation": "AP"}]
    assert history[2]["source"] == {"citation": "AFP"}
    assert [e["position"] for e in history] == sorted(e["position"] for e in history)
    assert store.reader.development(ident)["sources"] == [SOURCE, {"citation": "AP"}, {"citation": "AFP"}]


def test_a_correction_while_retracted_is_kept_but_current_at_no_record_time(store):
    ident = store.record(title="Old")
    retracted = store.write("retract_development", ident, reason="hoax")
    corrected = store.write("correct_development", ident, {"title": "New"}, reason="typo")
    assert store.titles() == [] and store.titles(as_of=corrected) == []
    assert (store.reader.development(ident)["title"], store.reader.development(ident)["retracted"]) == ("New", True)
    stated = store.reader.development(ident, as_of=corrected)
    assert (stated["title"], stated["retracted"]) == ("New", True)
    assert store.reader.development(ident, as_of=retracted)["title"] == "Old"
    store.write("restore_development", ident, reason="it was not")
    assert store.titles() == ["New"]
    assert store.titles(as_of=corrected) == [] and store.reader.development(ident, as_of=corrected)["retracted"]
    assert [e["type"] for e in store.reader.history(ident)] == ["recorded", "retracted", "corrected", "restored"]


def test_history_of_an_unknown_development_is_none(store):
    assert store.reader.history("00000000-0000-4000-8000-000000000000") is None
    assert store.reader.development("00000000-0000-4000-8000-000000000000") is None


# --- actor state -------------------------------------------------------------------------


def test_seed_armenia_leaves_the_csto_and_exercises_with_the_us_in_september_2023(seeded):
    before = seeded.reader.actor_state("armenia", "2023-09-01")
    after = seeded.reader.actor_state("armenia", "2023-09-30")
    assert before["attributes"]["membership.csto"]["value"] == "member"
    assert before["attributes"]["membership.csto"]["development"] == CSTO_MEMBERSHIP
    withdrawn = after["attributes"]["membership.csto"]
    assert withdrawn["value"] == "representative_withdrawn"
    assert withdrawn["development"] == CSTO_REPRESENTATIVE_WITHDRAWN
    assert withdrawn["when"] == "[2023-09-02..2023-09-10]"
    assert withdrawn["earliest"] == "2023-09-02"
    assert withdrawn["sources"] and withdrawn["sources"] == \
        seeded.reader.development(CSTO_REPRESENTATIVE_WITHDRAWN)["sources"]
    assert "united-states" not in before["relations"]
    assert after["relations"]["united-states"]["counts"]["material_cooperation"] >= 1
    assert (after["profile"]["id"], after["profile"]["name"]) == ("armenia", "Armenia")
    # in the order of their names, whatever order the store gathered them in
    assert len(after["relations"]) > 3 and list(after["relations"]) == sorted(after["relations"])
    assert len(after["attributes"]) > 1 and list(after["attributes"]) == sorted(after["attributes"])


def test_seed_armenia_relation_with_the_us_counts_each_shared_development(seeded):
    relation = seeded.reader.actor_state("armenia", "2023-09-30")["relations"]["united-states"]
    shared = seeded.ids(actors=["armenia"], date_to="2023-09-30")
    shared = [i for i in shared if i in set(seeded.ids(actors=["united-states"]))]
    assert EXERCISE_WITH_US in shared
    assert relation["developments"] == len(shared) == sum(relation["counts"].values())
    categories = [seeded.reader.development(i)["category"] for i in shared]
    assert relation["score"] == pytest.approx(sum(CATEGORIES[c].weight for c in categories))


def test_an_effect_with_value_null_ends_the_attribute(store):
    store.record(when="2023-01-01", effects=[effect("armenia", "membership.csto", "member")])
    store.record(when="2023-06-01", effects=[effect("armenia", "membership.csto", None)])
    attributes = {at: store.reader.actor_state("armenia", at)["attributes"]
                  for at in ("2022-12-31", "2023-05-31", "2023-06-01", "2024-01-01")}
    assert "membership.csto" not in attributes["2022-12-31"]
    assert attributes["2023-05-31"]["membership.csto"]["value"] == "member"
    assert "membership.csto" not in attributes["2023-06-01"]
    assert "membership.csto" not in attributes["2024-01-01"]


def test_on_the_same_day_the_later_recorded_effect_wins(store):
    first = store.record(id="ffffffff-ffff-4fff-bfff-ffffffffffff", when="2023-05-01",
                         effects=[effect("armenia", "alignment", "west")])
    later = store.record(id="00000000-0000-4000-8000-000000000001", when="2023-05",
                         effects=[effect("armenia", "alignment", "east")])
    assert first > later  # neither the id nor the value orders them
    attribute = store.reader.actor_state("armenia", "2023-05-01")["attributes"]["alignment"]
    assert (attribute["value"], attribute["development"]) == ("east", later)


def test_a_retracted_developments_effects_stop_counting_until_restored(store):
    store.record(when="2023-01-01", effects=[effect("armenia", "alignment", "east")])
    ident = store.record(when="2023-02-01", effects=[effect("armenia", "alignment", "west")])

    def alignment() -> str:
        return store.reader.actor_state("armenia", "2023-03-01")["attributes"]["alignment"]["value"]

    assert alignment() == "west"
    store.write("retract_development", ident, reason="hoax")
    assert alignment() == "east"
    store.write("restore_development", ident, reason="it was not")
    assert alignment() == "west"


def test_as_of_hides_the_effects_of_later_records(store):
    store.record(when="2023-01-01", effects=[effect("armenia", "alignment", "east")])
    then = store.position()
    store.record(when="2022-01-01", effects=[effect("armenia", "capital", "Yerevan")])
    store.record(when="2023-02-01", effects=[effect("armenia", "alignment", "west")])
    past = store.reader.actor_state("armenia", "2023-03-01", as_of=then)
    now = store.reader.actor_state("armenia", "2023-03-01")
    assert {k: v["value"] for k, v in past["attributes"].items()} == {"alignment": "east"}
    assert {k: v["value"] for k, v in now["attributes"].items()} == {"alignment": "west", "capital": "Yerevan"}


def test_a_corrected_date_moves_the_effect(store):
    ident = store.record(when="2023-01-01", effects=[effect("armenia", "alignment", "west")])
    store.write("correct_development", ident, {"when": "2023-06-01"}, reason="wrong month")
    assert "alignment" not in store.reader.actor_state("armenia", "2023-03-01")["attributes"]
    assert store.reader.actor_state("armenia", "2023-06-01")["attributes"]["alignment"]["value"] == "west"


@pytest.fixture
def relations(store: Store) -> dict[str, str]:
    """Armenia and Russia: an assault in August, aid and talks in December 2023; Armenia
    and Azerbaijan: one agreement long ago."""
    russia_armenia = parts("russia:initiator", "armenia:target")
    return {
        "assault": store.record(category="assault", when="2023-08-01", actors=russia_armenia),
        "aid": store.record(category="aid", when="2023-12-01", actors=russia_armenia),
        "consult": store.record(category="consult", when="2023-12-10", title="Talks in Moscow",
                                actors=parts("russia:participant", "armenia:participant", "armenia:initiator")),
        "agree": store.record(category="agree", when="2020-11-10",
                              actors=parts("azerbaijan:participant", "armenia:participant")),
    }


def test_relations_count_by_quad_class_and_score_by_category_weight(store, relations):
    russia = store.reader.actor_state("armenia", "2023-12-31")["relations"]["russia"]
    assert russia["counts"] == dict.fromkeys(QUAD_CLASSES, 0) | {
        "material_conflict": 1, "material_cooperation": 1, "verbal_cooperation": 1}
    assert russia["developments"] == 3
    assert russia["score"] == pytest.approx(sum(CATEGORIES[c].weight for c in ("assault", "aid", "consult")))
    assert russia["last"] == {"development": relations["consult"], "title": "Talks in Moscow",
                              "when": "2023-12-10", "category": "consult"}


def test_relations_weigh_categories_as_the_vocabulary_does_now(store, relations, monkeypatch):
    """The categories' weights and quad classes are the vocabulary's, written whenever the
    tables are made (each process start), not from the log: a changed weight needs no replay."""
    monkeypatch.setitem(CATEGORIES, "aid", CATEGORIES["aid"]._replace(weight=9.5, quad_class="verbal_cooperation"))
    Projector(store.chronicle).close()
    russia = store.reader.actor_state("armenia", "2023-12-31")["relations"]["russia"]
    assert russia["score"] == pytest.approx(sum(CATEGORIES[c].weight for c in ("assault", "aid", "consult")))
    assert russia["counts"]["verbal_cooperation"] == 2 and russia["counts"]["material_cooperation"] == 0


@pytest.mark.parametrize("other, at, trend", [
    ("russia", "2023-12-31", "warming"),  # aid and talks recently, an assault before
    ("russia", "2023-09-30", "cooling"),  # only the assault, recently
    ("russia", "2024-12-31", "steady"),  # nothing in the last 180 days
    ("azerbaijan", "2023-12-31", "steady"),
])
def test_relation_trend_compares_the_last_two_90_day_windows(store, relations, other, at, trend):
    assert store.reader.actor_state("armenia", at)["relations"][other]["trend"] == trend


def test_relations_only_count_developments_up_to_the_day(store, relations):
    russia = store.reader.actor_state("armenia", "2023-09-30")["relations"]["russia"]
    assert russia["developments"] == 1 and russia["last"]["development"] == relations["assault"]
    assert store.reader.actor_state("armenia", "2020-01-01")["relations"] == {}


@pytest.mark.parametrize("at", ["2020-11-10", "2023-08-01", "2023-09-30", "2023-12-09", "2023-12-31", "2024-06-01"])
def test_relations_from_totals_equal_relations_summed_up_to_the_day(store, relations, monkeypatch, at):
    """The current record's relations come from each pair's totals less its later pairs
    when fewer of the actor's developments come after the day: the same answer as the
    sum up to the day, after corrections and retractions too."""
    store.write("correct_development", relations["aid"], {"category": "sanction"}, reason="it was a sanction")
    store.write("correct_development", relations["agree"],
                {"actors": parts("russia:participant", "armenia:participant")}, reason="wrong party")
    store.write("retract_development", relations["consult"], reason="never happened")
    answers = {}
    for totals in (True, False):
        monkeypatch.setattr(Reader, "_totals_are_cheaper", lambda *_, totals=totals: ("1 = 1" if totals else "1 = 0", []))
        answers[totals] = store.reader.actor_state("armenia", at)["relations"]
    assert answers[True] == answers[False]
    if at >= "2023-12-31":
        assert answers[True]["russia"]["counts"]["material_conflict"] == 2  # the assault and the sanction
        assert "azerbaijan" not in answers[True]


def test_relations_come_from_the_totals_only_when_that_is_cheaper(store):
    """Totals cost two seeks per other actor: worth it once the developments up to the
    day outnumber the later ones by twice the other actors."""
    for month in range(1, 8):
        store.record(when=f"2023-{month:02d}-01", actors=parts("russia:initiator", "armenia:target"))
    def totals_are_cheaper(at: str) -> bool:
        condition, params = store.reader._totals_are_cheaper("armenia", at)
        row, = store.reader._select(f"SELECT CASE WHEN {condition} THEN 1 ELSE 0 END AS cheaper", params)
        return bool(row["cheaper"])

    assert store.reader.actor_state("armenia", "2023-06-15")["involvement"]["developments"] == 6
    assert totals_are_cheaper("2023-06-15")  # 1 later + 2 × 1 other < 6
    assert not totals_are_cheaper("2023-02-15")  # more later than earlier (2)
    store.record(when="2023-01-01", actors=parts("azerbaijan:initiator", "armenia:target", "pashinyan:speaker"))
    assert not totals_are_cheaper("2023-06-15")  # 1 later + 2 × 3 others, against 7


def test_involvement_counts_roles_categories_and_first_and_last_appearance(store, relations):
    involvement = store.reader.actor_state("armenia", "2023-12-31")["involvement"]
    assert involvement == {
        "developments": 4,
        "by_role": {"initiator": 1, "participant": 2, "target": 2},
        "by_category": {"agree": 1, "aid": 1, "assault": 1, "consult": 1},
        "first": "2020-11-10",
        "last": "2023-12-10",
    }


@pytest.fixture
def sqlite_store(tmp_path) -> Store:
    """A small SQLite store, for the plans of its statements."""
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/plan.db"})
    store = Store(chronicle, Projector(chronicle))
    store.chronicle.execute([("register_actor", actor) for actor in ACTORS], recorded_by="setup")
    store.record(when="2023-05-01", actors=parts("russia:initiator", "armenia:target"))
    yield store
    store.projector.close()
    chronicle.close()


def plan_of(store: Store, marker: str, call: Any) -> str:
    """SQLite's plan of the statement containing ``marker`` that ``call()`` runs."""
    statements = []
    select = store.reader._select
    store.reader._select = lambda sql, params=(), **kw: statements.append((sql, params)) or select(sql, params, **kw)
    try:
        call()
    finally:
        store.reader._select = select
    sql, params = next((s, p) for s, p in statements if marker in s)
    return " | ".join(row["detail"] for row in select("EXPLAIN QUERY PLAN " + sql, params))


def test_involvement_in_the_current_record_is_counted_without_sorting(sqlite_store):
    """An index gives an actor's current rows in the order of their groups (README,
    "Indexes"); at a million developments, sorting them took 3.3 ms at late days."""
    plan = plan_of(sqlite_store, "GROUP BY me.role", lambda: sqlite_store.reader.actor_state("armenia", "2023-12-31"))
    assert "development_actors_involvement" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("query", [{}, {"role": "target", "order": "desc"}, {"date_from": "2023-01-01"}])
def test_one_actors_timeline_is_read_in_timeline_order(sqlite_store, query):
    """Not every development of the actor looked up and sorted to answer a page: its rows
    in the index's order, only the ties of a day sorted by position."""
    plan = plan_of(sqlite_store, "ORDER BY", lambda: sqlite_store.ids(actors=["armenia"], **query))
    assert plan.startswith("CO-ROUTINE page | SEARCH a USING COVERING INDEX development_actors_actor"), plan
    assert "DISTINCT" not in plan, plan
    assert "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in plan, plan


def test_several_actors_timeline_merges_their_walks(sqlite_store):
    """Each actor's rows walked in timeline order (a page at most each), and merged: at a
    million developments, looking up two actors' ~12,000 versions to answer 50 took ~25 ms."""
    plan = plan_of(sqlite_store, "UNION", lambda: sqlite_store.ids(actors=["armenia", "russia"], categories=["aid"]))
    assert plan.startswith("CO-ROUTINE page | MERGE (UNION)") and "DISTINCT" not in plan, plan
    assert plan.count("SEARCH a USING COVERING INDEX development_actors_actor (actor=?)") == 2, plan


def test_the_last_shared_development_of_a_day_is_the_one_recorded_last(store):
    russia_armenia = parts("russia:initiator", "armenia:target")
    store.record(id="ffffffff-ffff-4fff-bfff-ffffffffffff", title="Recorded first", when="2023-05-01",
                 actors=russia_armenia)
    later = store.record(id="00000000-0000-4000-8000-000000000001", title="Recorded later", when="2023-05",
                         actors=russia_armenia)
    store.record(title="Before", when="2023-04-30", actors=russia_armenia)
    last = store.reader.actor_state("armenia", "2023-06-01")["relations"]["russia"]["last"]
    assert (last["development"], last["title"], last["when"]) == (later, "Recorded later", "2023-05")


def test_actor_state_as_of_a_timestamp_equals_actor_state_as_of_the_position_then(store, relations):
    """A timestamp is checked on the version rows, a position on the actor's own rows:
    both give the record as it stood."""
    ident = relations["aid"]
    positions = [
        store.write("correct_development", ident, {"category": "consult", "effects": [effect("armenia", "x", "y")]},
                    reason="talks, not aid"),
        store.write("retract_development", ident, reason="hoax"),
        store.write("restore_development", ident, reason="no hoax"),
    ]
    moments = {entry["position"]: entry["recorded_at"] for entry in store.reader.history(ident)}
    for position in positions:
        by_time = store.reader.actor_state("armenia", "2023-12-31", as_of=parse_as_of(moments[position]))
        by_position = store.reader.actor_state("armenia", "2023-12-31", as_of=position)
        assert {**by_time, "as_of": None} == {**by_position, "as_of": None}, position
    assert "x" in by_position["attributes"] and by_position["relations"]["russia"]["counts"]["verbal_cooperation"] == 2


def test_actor_state_reads_one_state_of_the_tables(store, monkeypatch):
    """A development projected while an actor's state is being computed shows in none of
    its parts (attributes, relations, involvement): they are read by one statement."""
    before = store.reader.actor_state("armenia", at="2023-12-31")
    view, select, written = store.projector.view, store.projector.view.select, []

    def write_after_the_first_statement(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        rows = select(*args, **kwargs)
        if not written:
            written.append(True)
            store.record(title="Projected meanwhile", when="2023-09-20",
                         effects=[effect("armenia", "membership.csto", False)])
        return rows

    monkeypatch.setattr(view, "select", write_after_the_first_statement)
    during = store.reader.actor_state("armenia", at="2023-12-31")
    monkeypatch.undo()
    after = store.reader.actor_state("armenia", at="2023-12-31")
    assert written and during == before
    assert after["involvement"]["developments"] == before["involvement"]["developments"] + 1
    assert after["attributes"]["membership.csto"]["value"] is False and "azerbaijan" in after["relations"]


def test_actor_state_of_an_unknown_actor_is_none(store):
    assert store.reader.actor_state("atlantis", "2023-01-01") is None


# --- actors --------------------------------------------------------------------------------


@pytest.mark.parametrize("q, slug", [
    ("Армен", "armenia"),
    ("армения", "armenia"),
    ("Հայաստան", "armenia"),
    ("eriwan", "armenia"),
    ("OVKS", "csto"),
    ("ovks", "csto"),
    ("ОДКБ", "csto"),
    ("paschinjan", "pashinyan"),
    ("PASINYAN", "pashinyan"),
])
def test_actors_are_found_by_any_name_or_alias(seeded, q, slug):
    assert slug in [actor["id"] for actor in seeded.reader.actors(q)]


def test_actors_without_a_query_are_listed_by_slug(store):
    assert [actor["id"] for actor in store.reader.actors()] == ["armenia", "azerbaijan", "pashinyan", "russia"]
    assert [actor["id"] for actor in store.reader.actors(limit=2)] == ["armenia", "azerbaijan"]


def test_actor_search_is_literal_and_finds_nothing_for_unknown_names(seeded):
    assert seeded.reader.actors("atlantis") == []
    assert seeded.reader.actors("%") == []
    assert [actor["id"] for actor in seeded.reader.actors("u.s.")] == ["united-states"]


def test_actor_as_of_shows_the_profile_before_a_correction(store):
    registered = store.position()
    corrected = store.write("correct_actor", "armenia", {"name": "Republic of Armenia", "aliases": ["Hayastan"]},
                            reason="official name")
    assert store.reader.actor("armenia", as_of=registered)["name"] == "Armenia"
    assert store.reader.actor("armenia", as_of=corrected)["name"] == "Republic of Armenia"
    assert store.reader.actor("armenia")["name"] == "Republic of Armenia"
    assert store.reader.actor("armenia", as_of=0) is None
    assert [actor["id"] for actor in store.reader.actors("hayastan")] == ["armenia"]
    past = store.reader.actor_state("armenia", "2023-01-01", as_of=registered)
    assert past["profile"]["name"] == "Armenia"


def test_a_page_keeps_every_character_of_its_documents(store):
    """A page is read as one row, its documents joined by a control character
    (``timeline.views.SEPARATOR``): stored JSON escapes it, so it never splits one."""
    titles = ["Record\x1eseparator", 'Quote " and \\ and\nnewline', "Unit\x1fseparator ✓"]
    for day, title in enumerate(titles, start=1):
        store.record(title=title, when=f"2023-09-0{day}")
    assert store.titles() == titles
    first = store.page(limit=2)
    assert [item["title"] for item in first.items] == titles[:2] and first.next_cursor
    assert [item["title"] for item in store.page(cursor=first.next_cursor).items] == titles[2:]


def test_an_empty_page_is_pinned_to_the_record_now(store):
    store.record()
    page = store.page(date_from="1900-01-01", date_to="1900-12-31")
    assert page.items == [] and page.next_cursor is None and page.as_of == store.position()


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_page_is_in_timeline_order_whatever_order_its_rows_are_gathered_in(store, order, monkeypatch):
    """A page's rows are gathered by aggregates, and no aggregate promises the order of
    the rows it is given: here they are given shuffled, and every page is still in order."""
    for day in (3, 1, 2, 1, 5, 4):
        store.record(when=f"2023-09-{day:02d}")
    expected = store.ids(order=order)
    select = store.reader._select

    def shuffled(statement, params=(), **kwargs):
        if " AS page" in statement:
            start = statement.index("FROM (", statement.index("AS documents")) + len("FROM (")
            end = statement.rindex(") AS page")
            statement = (f"{statement[:start]}SELECT * FROM ({statement[start:end]}) AS rows_in_order "
                         f"ORDER BY random(){statement[end:]}")
        return select(statement, params, **kwargs)

    monkeypatch.setattr(store.reader, "_select", shuffled)
    for _ in range(5):
        assert store.ids(order=order) == expected
        ids, _ = store.walk(order=order, limit=2)
        assert ids == expected

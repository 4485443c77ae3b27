"""Read queries: every read the API serves, as plain data from the projections' tables.

Record time (``as_of``) is either a log position or an RFC 3339 timestamp: the record
exactly as it stood then. Valid time (``at``, ``from``/``to``) is in ISO days, compared
with each development's ``earliest``/``latest``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any, Literal

import msgspec

from events.vocabulary import QUAD_CLASSES
from timeline.projections import Actors, Developments
from timeline.projector import Projector
from timeline.text import fold
from timeline.views import SEPARATOR, packed_row, unpack

AsOf = int | str | None
TREND_DAYS = 90
TRIGRAM = 3
"""Free text this long (folded) or longer is looked up in the text index; shorter text
has no trigram to look up, and is matched by reading the timeline in order."""
COMMON = 10_000
"""Free text found in this many versions is common: reading the timeline in order meets a
page of it sooner than this many candidates could be read and sorted."""
_NAMED = "SELECT n.slug FROM {actor_terms} n WHERE n.term LIKE ? ESCAPE '\\'"
"""The actors with a name or alias (folded) that matches a LIKE pattern."""
MAX_POSITION = 2**63 - 1
"""Log positions are 64-bit integers in both stores."""
WALKED_ACTORS = 32
"""A timeline of this many actors or fewer walks each actor's rows in timeline order and
merges the walks; more actors look up the versions of all of them and sort. At 200k
developments, 20 actors from a day on took 5.6 ms walked and 35 ms looked up; but 100
actors with filters that no version passed took 22 ms walked and 9 ms looked up."""
_Relation = packed_row("Relation", ["other", "developments", "score", *QUAD_CLASSES, "recent", "previous", "last_id",
                                    "last_title", "last_when", "last_category"])
"""What actor state shows of a relation, as its statement names it."""
_Attribute = packed_row("Attribute", ["attribute", "value", "earliest", "doc"])
"""What actor state shows of an attribute: its value, from which day, and the document of
the development that set it."""
_Involvement = packed_row("Involvement", ["role", "category", "n", "developments", "first", "last"])
"""Actor state's involvement, per role and category."""
_PAGE_KEY = ["earliest", "latest", "first_position"]
"""A development's place in the timeline order: the key a cursor continues after."""
_decode = msgspec.json.decode
"""Stored documents are read with msgspec: a page of 50 decodes in a third of the time of
``json.loads``, with the same result."""
_encode = msgspec.json.encode


class BadQuery(ValueError):
    """A query parameter that cannot be understood; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass
class TimelineQuery:
    actors: list[str] = field(default_factory=list)
    role: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    certainties: list[str] = field(default_factory=list)
    date_from: str | None = None
    date_to: str | None = None
    match: Literal["overlaps", "within"] = "overlaps"
    q: str | None = None
    as_of: AsOf = None
    order: Literal["asc", "desc"] = "asc"
    limit: int = 50
    cursor: str | None = None
    involving: str | None = None
    """An actor every development must involve (an actor's own timeline)."""


@dataclass
class Page:
    documents: list[str]
    """The developments as stored: compact JSON, which a JSON answer embeds as it is."""
    next_cursor: str | None
    as_of: AsOf
    """The record time the page shows (pinned for every following page)."""

    @cached_property
    def items(self) -> list[dict[str, Any]]:
        """The developments, decoded."""
        return [_decode(document) for document in self.documents]


class _Where:
    """Conditions joined by AND, with their parameters in the order they appear."""

    def __init__(self, conditions: list[str] | None = None, params: list[Any] | None = None):
        self.conditions = list(conditions or [])
        self.params = list(params or [])

    def add(self, condition: str, *params: Any) -> _Where:
        self.conditions.append(condition)
        self.params += params
        return self

    def extend(self, other: _Where) -> _Where:
        self.conditions += other.conditions
        self.params += other.params
        return self

    def __str__(self) -> str:
        return " AND ".join(self.conditions)


class Reader:
    """Queries over the live projections of one store."""

    def __init__(self, projector: Projector):
        self.projector = projector
        developments = next(p for p in projector.projections if isinstance(p, Developments))
        actors = next(p for p in projector.projections if isinstance(p, Actors))
        self.view = projector.view
        self._snapshot = threading.local()
        """The read transaction of the answer this thread is computing, if it needs one."""
        self.tables = {**developments.tables, **{f"actor_{k}": v for k, v in actors.tables.items()}}

    def _select(self, statement: str, params: list[Any] | tuple[Any, ...] = (), *,
                plan_each_time: bool = False) -> list[dict[str, Any]]:
        return self.view.select(statement, self.tables, params, getattr(self._snapshot, "cursor", None),
                                plan_each_time=plan_each_time)

    @contextmanager
    def _one_snapshot(self) -> Iterator[None]:
        """The statements of one answer read one state of the tables: a write projected
        between two of them must not show in some parts of the answer only."""
        with self.view.snapshot() as cursor:
            self._snapshot.cursor = cursor
            try:
                yield
            finally:
                self._snapshot.cursor = None

    # Developments

    def timeline(self, query: TimelineQuery) -> Page:
        if query.q:  # free text may read the text index first: both statements read one state
            with self._one_snapshot():
                return self._timeline(query)
        return self._timeline(query)

    def _timeline(self, query: TimelineQuery) -> Page:
        after, as_of = _decode_cursor(query.cursor) if query.cursor else (None, query.as_of)
        as_of = self._at_most_now(as_of)  # a cursor is not signed: one made by hand may reach beyond the end
        now = query.cursor is None and as_of is None
        statement, params = self._page_statement(query, as_of, now, after)
        # The page is read as one row (see ReadTables.select): its documents joined as
        # they are stored (packed, they would be escaped), their keys, the position read.
        # One aggregate's rows come in the order of the other's, but no aggregate promises
        # the statement's order: the page is sorted here by its keys.
        dialect = self.view.dialect
        statement = (f"SELECT {dialect.joined('doc')} AS documents, {dialect.array_of(dialect.array(_PAGE_KEY))} "
                     f"AS keys, {'(SELECT position FROM reached)' if now else 'NULL'} AS reached "
                     f"FROM ({statement}) AS page")
        page, = self._select(*self._pinned(statement, params, now), plan_each_time=bool(query.q))
        if now:
            as_of = page["reached"]
        rows: list[tuple[list[Any], str]] = []
        if page["documents"] is not None:
            rows = sorted(zip(_decode(page["keys"]), page["documents"].split(SEPARATOR)), key=itemgetter(0),
                          reverse=query.order == "desc")
        cursor = None
        if len(rows) > query.limit:  # one more than asked: there is a next page
            rows = rows[: query.limit]
            cursor = _encode_cursor(rows[-1][0], as_of)
        return Page([document for _, document in rows], cursor, as_of)

    def _at_most_now(self, as_of: AsOf) -> AsOf:
        """A record time beyond the record's end is the record now, and the cursor pins
        it as such: pinned beyond the end, later pages showed writes made meanwhile."""
        if isinstance(as_of, int):  # at most the known position, the log has it: no query
            return as_of if as_of <= self.projector.known_position else min(as_of, self.projector.position())
        if isinstance(as_of, str):
            return min(as_of, datetime.now(timezone.utc).isoformat(timespec="microseconds"))
        return as_of

    def _pinned(self, statement: str, params: list[Any], now: bool) -> tuple[str, list[Any]]:
        """A statement of the current record (``now``) with the table ``reached`` in front:
        the position its rows are pinned to, read in the same statement as they are (read
        apart, a correction between the two took its development off the page)."""
        if not now:
            return statement, params
        reached, reached_params = self.projector.reached()
        return f"WITH reached AS ({reached}) {statement}", [*reached_params, *params]

    def _page_statement(self, query: TimelineQuery, as_of: AsOf, now: bool,
                        after: list[Any] | None) -> tuple[str, list[Any]]:
        """The statement of a page of the timeline (one row more than ``limit``: whether
        there is a next page), and its parameters. ``now``: the first page of the current
        record, at the position of the table ``reached`` (:meth:`_pinned`); ``after``: the
        cursor's key."""

        def record_time(alias: str) -> _Where:
            if now:  # the rows current now (an index equality on position_to), pinned to
                # this position for the pages that follow
                return _Where([f"{alias}.position_to IS NULL",
                               f"{alias}.position_from <= (SELECT position FROM reached)"])
            return _Where(*_record_time(alias, as_of))

        where = record_time("v")
        # The rows of actors that a version must have (or, for free text, may have), by the
        # actors index: bounded by the date range, the categories (checked in the index, not
        # on each version looked up) and, unless as_of is a timestamp (checked on the
        # version row only), by the record time.
        own = _Where()
        for condition, value in _bounds("a", query):
            own.add(condition, value)
        if query.categories:
            own.add(f"a.category IN ({_marks(query.categories)})", *query.categories)
        if not isinstance(as_of, str):
            own.extend(record_time("a"))
        # Actors (up to WALKED_ACTORS): each actor's rows, one per version (its row of
        # ``role``, else its first), walked in the timeline order of the actors index, each
        # checked against its version until the page is full; several actors' walks are
        # merged (looking every candidate up first read all of an actor's ~6,000 versions
        # at a million to answer 50). Otherwise candidates: the positions of the versions
        # that may match, from an index, when the query has a selective part (more actors,
        # else free text); else the timeline order.
        walks: list[_Where] = []
        candidates: tuple[str, list[Any]] | None = None
        # On an actor's own timeline (``involving``) the role is that actor's, also when
        # other actors narrow it; else it is the role of the actors asked for.
        walked_role = query.role if query.involving is None or query.actors == [query.involving] else None
        role = ("a.role = ?", walked_role) if walked_role else ("a.first_role = 1",)
        if len(query.actors) > WALKED_ACTORS:
            found = _Where().add(f"a.actor IN ({_marks(query.actors)})", *query.actors)
            if walked_role:
                found.add(*role)
            found.extend(own)
            candidates = f"SELECT DISTINCT a.position_from FROM {{actors}} a WHERE {found}", found.params
        elif query.actors:
            walks = [_Where().add("a.actor = ?", actor).add(*role).extend(own) for actor in query.actors]
        elif query.role:  # a role alone is common: read the timeline in order, checking each row
            where.add("EXISTS (SELECT 1 FROM {actors} r WHERE r.first_position = v.first_position "
                      "AND r.position_from = v.position_from AND r.role = ?)", query.role)
        if query.involving:
            involved = _Where(["i.actor = ?"], [query.involving])
            if query.role and not walked_role:
                involved.add("i.role = ?", query.role)
            where.add(f"EXISTS (SELECT 1 FROM {{actors}} i WHERE i.first_position = v.first_position "
                      f"AND i.position_from = v.position_from AND {involved})", *involved.params)
        for column, values in (("category", query.categories), ("certainty", query.certainties)):
            if values:
                where.add(f"v.{column} IN ({_marks(values)})", *values)
        if query.tags:
            where.add(f"EXISTS (SELECT 1 FROM {{tags}} t WHERE t.first_position = v.first_position "
                      f"AND t.position_from = v.position_from AND t.tag IN ({_marks(query.tags)}))", *query.tags)
        for condition, value in _bounds("v", query):
            where.add(condition, value)
        if query.q:
            text = fold(query.q)
            pattern = _like_pattern(text)
            # What free text means: the version's title or summary contains it, or one of
            # its actors has a name or alias (any language) that does.
            where.add(f"(v.search LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM {{actors}} a WHERE "
                      f"a.first_position = v.first_position AND a.position_from = v.position_from AND "
                      f"a.actor IN ({_NAMED})))", pattern, pattern)
            if candidates is None and not walks and len(text) >= TRIGRAM:
                found_count, positions = self._found(text, pattern, own, now)
                if found_count < COMMON:
                    candidates = (f"SELECT DISTINCT CAST(p.value AS BIGINT) AS position_from FROM "
                                  f"{self.view.dialect.elements('?', 'p')}", [positions])
        direction = "DESC" if query.order == "desc" else "ASC"
        order = "a" if walks else "v"  # the actor rows carry their version's dates
        if after is not None:
            where.add(f"({order}.earliest, {order}.latest, {order}.first_position) "
                      f"{'<' if direction == 'DESC' else '>'} (?, ?, ?)", *after)

        def ordered(alias: str) -> str:
            return ", ".join(f"{alias}{column} {direction}" for column in _PAGE_KEY)

        def page(source: str, where: _Where, source_params: Sequence[Any] = ()) -> tuple[str, list[Any]]:
            return (f"SELECT v.doc, v.earliest, v.latest, v.first_position FROM {source} WHERE {where} "
                    f"ORDER BY {ordered(order + '.')} LIMIT ?", [*source_params, *where.params, query.limit + 1])

        if candidates:
            # Each candidate is looked up by its position and checked; the few that pass are
            # sorted. (CROSS JOIN keeps SQLite from reading the timeline order instead.)
            statement, params = candidates
            return page(f"({statement}) c CROSS JOIN {{versions}} v",
                        _Where(["v.position_from = c.position_from"]).extend(where), params)
        if not walks:
            return page("{versions} v", where)
        walked = [page("{actors} a CROSS JOIN {versions} v",
                       _Where(["v.position_from = a.position_from"]).extend(walk).extend(where)) for walk in walks]
        if len(walked) == 1:
            return walked[0]
        # Each actor's walk gives at most a page; the page is the first rows of their union
        # (a development of several of the actors once).
        return (" UNION ".join(f"SELECT * FROM ({statement}) w{i}" for i, (statement, _) in enumerate(walked))
                + f" ORDER BY {ordered('')} LIMIT ?", [*(p for _, params in walked for p in params), query.limit + 1])

    def _found(self, text: str, pattern: str, own: _Where, now: bool) -> tuple[int, str]:
        """How many versions may hold free text, counted up to COMMON, and their positions
        (a JSON array): those whose folded text contains it, by the text index, and those
        of the actors so named, by the actors index (``own``: their bounds)."""
        if self.view.dialect.name == "sqlite":
            found, value = "SELECT rowid AS position_from FROM {search} WHERE {search} MATCH ?", \
                '"' + text.replace('"', '""') + '"'
        else:
            found, value = "SELECT position_from FROM {versions} WHERE search LIKE ? ESCAPE '\\'", pattern
        named = _Where([f"a.actor IN ({_NAMED})"], [pattern]).extend(own)
        row = self._select(*self._pinned(
            f"SELECT COUNT(*) AS n, {self.view.dialect.array_of('position_from')} AS positions FROM ({found} "
            f"UNION ALL SELECT a.position_from FROM {{actors}} a WHERE {named} "
            f"LIMIT ?) found", [value, *named.params, COMMON], now), plan_each_time=True)[0]
        return row["n"], row["positions"] or "[]"

    def development(self, ident: str, as_of: AsOf = None) -> dict[str, Any] | None:
        """A development as the record states it (or stated it at ``as_of``), retracted or not."""
        if as_of is None:
            rows = self._select("SELECT h.version, h.retracted, v.doc FROM {heads} h JOIN {versions} v ON "
                                "v.first_position = h.first_position AND v.position_from = h.doc_from WHERE h.id = ?",
                                [ident])
            if not rows:
                return None
            return {**_decode(rows[0]["doc"]), "version": rows[0]["version"],
                    "retracted": bool(rows[0]["retracted"])}
        column, value = _record_column(as_of)
        closed = "position_to" if column == "position_from" else "recorded_to"
        rows = self._select(
            f"SELECT v.doc, v.{closed} AS closed, (SELECT MAX(e.version) FROM {{history}} e WHERE "
            f"e.first_position = h.first_position AND e.{'position' if column == 'position_from' else 'recorded_at'}"
            f" <= ?) AS version FROM {{heads}} h JOIN {{versions}} v ON v.first_position = h.first_position "
            f"WHERE h.id = ? AND v.{column} <= ? ORDER BY v.position_from DESC LIMIT 1",
            [value, ident, value])
        if not rows:
            return None
        retracted = rows[0]["closed"] is not None and rows[0]["closed"] <= value
        return {**_decode(rows[0]["doc"]), "version": rows[0]["version"], "retracted": retracted}

    def written(self, ident: str, version: int) -> dict[str, Any] | None:
        """A development as a write of this process left it: the state this process
        projected (encoded and decoded, as a stored one is), else as it stands now; None
        while the read model has not reached that version (its projection failed)."""
        state = self.projector.written(ident, version)
        if state is not None:
            return _decode(_encode(state))
        return _at_version(self.development(ident), version)

    def history(self, ident: str) -> list[dict[str, Any]] | None:
        rows = self._select(
            "SELECT h.*, v.doc FROM {heads} d JOIN {history} h ON h.first_position = d.first_position "
            "LEFT JOIN {versions} v ON h.type = 'recorded' AND v.first_position = h.first_position "
            "AND v.position_from = h.position WHERE d.id = ? ORDER BY h.version", [ident])
        if not rows:
            return None
        return [{"version": r["version"], "type": r["type"], "position": r["position"],
                 "recorded_at": r["recorded_at"], "recorded_by": r["recorded_by"], "reason": r["reason"],
                 **_details(r)} for r in rows]

    # Actors

    def actor(self, slug: str, as_of: AsOf = None) -> dict[str, Any] | None:
        rows = self._select(*_actor_statement(slug, as_of))
        return _decode(rows[0]["doc"]) if rows else None

    def written_actor(self, slug: str, version: int) -> dict[str, Any] | None:
        """An actor as a write left it; None while the read model has not reached that
        version (its projection failed)."""
        return _at_version(self.actor(slug), version)

    def actors(self, q: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Actors whose id, names or aliases (any language) contain ``q``."""
        if not q:
            rows = self._select("SELECT doc FROM {actor_heads} ORDER BY slug LIMIT ?", [limit])
        else:
            pattern = _like_pattern(fold(q))
            rows = self._select(
                "SELECT doc FROM {actor_heads} WHERE slug IN (SELECT slug FROM {actor_terms} "
                "WHERE term LIKE ? ESCAPE '\\') ORDER BY slug LIMIT ?", [pattern, limit])
        return [_decode(row["doc"]) for row in rows]

    def actor_state(self, slug: str, at: str | None = None, as_of: AsOf = None) -> dict[str, Any] | None:
        """What the record says about an actor on day ``at`` (default today), as the
        record stood at ``as_of`` (default now): profile, attributes, relations and
        involvement.

        All of it is read by one statement, which sees one state of the tables by itself.
        Each statement is also a hand-over of the interpreter lock in a busy worker: read
        as seven statements in a snapshot, an answer cost 16 threads twice the CPU it
        cost one."""
        at = at or date.today().isoformat()
        parts = {"profile": _actor_statement(slug, as_of), "involvement": self._involvement(slug, at, as_of),
                 "attributes": self._attributes(slug, at, as_of), "relations": self._relations(slug, at, as_of)}
        row, = self._select("SELECT " + ", ".join(f"({statement}) AS {name}" for name, (statement, _) in parts.items()),
                            [param for _, params in parts.values() for param in params])
        if row["profile"] is None:
            return None
        profile = _decode(row["profile"])
        return {
            "actor": slug,
            "at": at,
            "as_of": as_of,
            "profile": {k: profile.get(k) for k in ("id", "name", "names", "aliases", "kind", "description",
                                                     "wikidata")},
            "attributes": _attributes_shown(unpack(row["attributes"], _Attribute)),
            "relations": _relations_shown(unpack(row["relations"], _Relation)),
            "involvement": _involvement_shown(unpack(row["involvement"], _Involvement)),
        }

    # Actor state is computed in SQL from the actor's own rows (actors and effects
    # indexes, which hold the dates, category and record time); documents are read only
    # for the rows shown. Each part is a statement of one row: its rows packed
    # (Dialect.packed).

    def _attributes(self, slug: str, at: str, as_of: AsOf) -> tuple[str, list[Any]]:
        """Each attribute's latest effect on or before ``at`` (ties: the later recorded
        development), with its development; an effect with value null ends the attribute."""
        join, current, params = _own_rows("l", as_of)
        # Per attribute, the position of its latest effect (a backward seek in the effects
        # index), then that effect by its primary key, and its version's document.
        return self.view.dialect.packed(
            f"SELECT e.attribute, e.value, e.earliest, v.doc FROM (SELECT a.attribute, (SELECT l.position_from "
            f"FROM {{effects}} l{join} WHERE l.actor = ? AND l.attribute = a.attribute AND l.earliest <= ? AND {current} "
            f"ORDER BY l.earliest DESC, l.first_position DESC LIMIT 1) AS position_from FROM (SELECT DISTINCT attribute "
            f"FROM {{effects}} WHERE actor = ?) a) k CROSS JOIN {{effects}} e CROSS JOIN {{versions}} v "
            f"WHERE e.position_from = k.position_from AND e.actor = ? AND e.attribute = k.attribute "
            f"AND e.value <> 'null' AND v.position_from = e.position_from", _Attribute), [slug, at, *params, slug, slug]

    def _relations(self, slug: str, at: str, as_of: AsOf) -> tuple[str, list[Any]]:
        """Per other actor, the developments shared up to ``at`` (each once, whatever the
        roles): counts by quad class, summed weights, the last one (latest ``earliest``,
        ties: the later recorded) with what a relation shows of it (from the narrow briefs
        table), and the trend of the last 90 days against the 90 before."""
        day = date.fromisoformat(at)
        windows = [_days_before(day, TREND_DAYS), _days_before(day, 2 * TREND_DAYS)]
        summed, summed_params = self._with_briefs(*self._relations_summed(slug, at, as_of, windows))
        if as_of is not None:
            return summed, summed_params
        cheaper, cheaper_params = self._totals_are_cheaper(slug, at)
        totals, totals_params = self._with_briefs(*self._relations_from_totals(slug, at, windows))
        # CASE runs the subquery of its branch only, in both stores.
        return (f"SELECT CASE WHEN {cheaper} THEN ({totals}) ELSE ({summed}) END",
                [*cheaper_params, *totals_params, *summed_params])

    def _with_briefs(self, statement: str, params: list[Any]) -> tuple[str, list[Any]]:
        """Relations with what each shows of its last development, packed."""
        return self.view.dialect.packed(
            f"SELECT r.*, b.id AS last_id, b.title AS last_title, b.when_stated AS last_when, "
            f"b.category AS last_category FROM ({statement}) r CROSS JOIN {{briefs}} b "
            f"WHERE b.position_from = r.position_from", _Relation), params

    @staticmethod
    def _totals_are_cheaper(slug: str, at: str) -> tuple[str, list[Any]]:
        """Whether the totals are the cheaper way to the relations at ``at``: the actor's
        current developments dated after it (counted no further than needed), with two
        for each other actor (the totals' two seeks per relation cost about as much as
        summing the pairs of two developments), are fewer than those up to it."""
        earlier = ("(SELECT COUNT(*) FROM {actors} WHERE actor = ? AND earliest <= ? AND position_to IS NULL "
                   "AND first_role = 1)")
        return (f"(SELECT COUNT(*) FROM (SELECT 1 FROM {{actors}} WHERE actor = ? AND earliest > ? "
                f"AND position_to IS NULL AND first_role = 1 LIMIT {earlier}) a) "
                f"+ 2 * (SELECT COUNT(*) FROM {{relations}} WHERE actor = ?) < {earlier}",
                [slug, at, slug, at, slug, slug, at])

    @staticmethod
    def _relations_summed(slug: str, at: str, as_of: AsOf, windows: list[str]) -> tuple[str, list[Any]]:
        """Relations at any record time: the pairs up to ``at``, summed per other actor in
        the order of the pairs index (no sort), with the weight and quad class of each
        row's category and the weights of the two trend windows; then, per other actor,
        the last development: one backward seek in the same index."""
        recent_from, before_from = windows
        join, current, params = _own_rows("p", as_of)
        last_join, last_current, _ = _own_rows("l", as_of)
        return (
            f"WITH relation AS (SELECT p.other, COUNT(*) AS developments, SUM(c.weight) AS score, "
            f"{', '.join(f'SUM(c.{quad}) AS {quad}' for quad in QUAD_CLASSES)}, MAX(p.earliest) AS day, "
            f"SUM(CASE WHEN p.earliest > ? THEN c.weight ELSE 0 END) AS recent, "
            f"SUM(CASE WHEN p.earliest > ? AND p.earliest <= ? THEN c.weight ELSE 0 END) AS previous "
            f"FROM {{pairs}} p{join} CROSS JOIN {{categories}} c WHERE p.actor = ? AND {current} AND p.earliest <= ? "
            f"AND c.category = p.category GROUP BY p.other) "
            f"SELECT r.*, (SELECT l.position_from FROM {{pairs}} l{last_join} WHERE l.actor = ? AND l.other = r.other "
            f"AND l.earliest = r.day AND {last_current} ORDER BY l.first_position DESC LIMIT 1) AS position_from "
            f"FROM relation r",
            [recent_from, before_from, recent_from, slug, *params, at, slug, *params])

    @staticmethod
    def _relations_from_totals(slug: str, at: str, windows: list[str]) -> tuple[str, list[Any]]:
        """Relations in the current record, for a day after most of the actor's
        developments: each pair's totals over all time, less its pairs dated after
        ``at``, which are read with those of the trend windows in one seek per other
        actor; then the last development up to ``at``: one backward seek."""
        recent_from, before_from = windows
        later = "CASE WHEN p.earliest > ? THEN {} ELSE 0 END"
        totals = ", ".join(f"t.{column} - SUM({later.format(value)}) AS {column}" for column, value in
                           [("developments", "1"), ("score", "c.weight"), *((q, f"c.{q}") for q in QUAD_CLASSES)])
        return (
            f"WITH relation AS (SELECT t.other, {totals}, "
            f"SUM(CASE WHEN p.earliest > ? AND p.earliest <= ? THEN c.weight ELSE 0 END) AS recent, "
            f"SUM(CASE WHEN p.earliest > ? AND p.earliest <= ? THEN c.weight ELSE 0 END) AS previous "
            f"FROM {{relations}} t LEFT JOIN {{pairs}} p ON p.actor = t.actor AND p.other = t.other "
            f"AND p.earliest > ? AND p.position_to IS NULL LEFT JOIN {{categories}} c ON c.category = p.category "
            f"WHERE t.actor = ? GROUP BY t.actor, t.other) "
            f"SELECT r.*, (SELECT l.position_from FROM {{pairs}} l WHERE l.actor = ? AND l.other = r.other "
            f"AND l.earliest <= ? AND l.position_to IS NULL ORDER BY l.earliest DESC, l.first_position DESC LIMIT 1) "
            f"AS position_from FROM relation r WHERE r.developments > 0",
            [*[at] * (2 + len(QUAD_CLASSES)), recent_from, at, before_from, recent_from, before_from, slug, slug, at])

    def _involvement(self, slug: str, at: str, as_of: AsOf) -> tuple[str, list[Any]]:
        """How often the actor took part up to ``at``, per role and category: rows (each
        role it had) and developments (each once: on the actor's first row of a version,
        ``first_role`` is 1), first and last day."""
        join, current, params = _own_rows("me", as_of)
        return self.view.dialect.packed(
            f"SELECT me.role, me.category, COUNT(*) AS n, SUM(me.first_role) AS developments, MIN(me.earliest) AS first, "
            f"MAX(me.latest) AS last FROM {{actors}} me{join} WHERE me.actor = ? AND me.earliest <= ? AND {current} "
            f"GROUP BY me.role, me.category", _Involvement), [slug, at, *params]


def _actor_statement(slug: str, as_of: AsOf) -> tuple[str, list[Any]]:
    """The statement of an actor's document (``doc``), now or at record time ``as_of``."""
    if as_of is None:
        return "SELECT doc FROM {actor_heads} WHERE slug = ?", [slug]
    where, params = _record_time("v", as_of)
    return f"SELECT v.doc FROM {{actor_versions}} v WHERE v.slug = ? AND {' AND '.join(where)}", [slug, *params]


def _attributes_shown(rows: list[Any]) -> dict[str, Any]:
    attributes = {}
    for row in sorted(rows, key=attrgetter("attribute")):
        doc = _decode(row.doc)
        attributes[row.attribute] = {"value": _decode(row.value), "development": doc["id"], "title": doc["title"],
                                     "when": doc["when"], "earliest": row.earliest, "sources": doc["sources"]}
    return attributes


def _relations_shown(rows: list[Any]) -> dict[str, dict[str, Any]]:
    relations = {}
    for row in sorted(rows, key=attrgetter("other")):
        recent, previous = float(row.recent), float(row.previous)
        relations[row.other] = {
            "counts": {quad: getattr(row, quad) for quad in QUAD_CLASSES},
            "developments": row.developments, "score": float(row.score),
            "last": {"development": row.last_id, "title": row.last_title, "when": row.last_when,
                     "category": row.last_category},
            "recent_score": recent, "previous_score": previous,
            "trend": "warming" if recent > previous else "cooling" if recent < previous else "steady",
        }
    return relations


def _involvement_shown(rows: list[Any]) -> dict[str, Any]:
    by_role: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for row in rows:
        by_role[row.role] = by_role.get(row.role, 0) + row.n
        if row.developments:
            by_category[row.category] = by_category.get(row.category, 0) + row.developments
    return {
        "developments": sum(by_category.values()),
        "by_role": dict(sorted(by_role.items())),
        "by_category": dict(sorted(by_category.items())),
        "first": min((row.first for row in rows), default=None),
        "last": max((row.last for row in rows), default=None),
    }


def _at_version(document: dict[str, Any] | None, version: int) -> dict[str, Any] | None:
    """A document read back after a write, if the read model has reached the write's version."""
    return document if document is not None and document["version"] >= version else None


def _details(row: dict[str, Any]) -> dict[str, Any]:
    """What an event of a development's history changed: for its recording, everything."""
    if row["type"] == "recorded":
        stated = _decode(row["doc"])
        return {"stated": {k: v for k, v in stated.items() if k not in ("id", "version", "recorded_at", "recorded_by")}}
    return _decode(row["details"]) if row["details"] else {}


def _days_before(day: date, days: int) -> str:
    """The ISO day ``days`` before ``day`` (the calendar's first day at the earliest)."""
    return (day - timedelta(days=days)).isoformat() if day > date.min + timedelta(days=days) else date.min.isoformat()


def _bounds(alias: str, query: TimelineQuery) -> list[tuple[str, str]]:
    """The valid-time conditions of a query: overlapping (default) or within the range."""
    if query.match == "within":
        bounds = ((f"{alias}.earliest >= ?", query.date_from), (f"{alias}.latest <= ?", query.date_to))
    else:
        bounds = ((f"{alias}.latest >= ?", query.date_from), (f"{alias}.earliest <= ?", query.date_to))
    return [(condition, value) for condition, value in bounds if value]


def _marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


def _like_pattern(text: str) -> str:
    """A LIKE pattern for text that contains ``text`` literally (``%`` and ``_`` included)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def parse_as_of(value: Any) -> AsOf:
    """A log position (digits) or an RFC 3339 timestamp, normalised for comparison."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        if int(value) > MAX_POSITION:
            raise BadQuery("as_of", f"a log position is at most {MAX_POSITION}")
        return int(value)
    try:
        moment = datetime.fromisoformat(str(value).upper().replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery("as_of", "must be a log position or an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise BadQuery("as_of", "a timestamp needs a time zone, e.g. 2023-09-20T12:00:00Z")
    try:
        return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the calendar begins in UTC
        raise BadQuery("as_of", "is outside the calendar once converted to UTC") from None


def _record_column(as_of: AsOf) -> tuple[str, Any]:
    return ("position_from", as_of) if isinstance(as_of, int) else ("recorded_from", as_of)


def _own_rows(alias: str, as_of: AsOf) -> tuple[str, str, list[Any]]:
    """A join and a condition for the actor or effect rows (``alias``) of the versions
    current at record time ``as_of``: by the rows' own positions, or for a timestamp by
    their versions' record times. Returns (join, condition, its parameters)."""
    if isinstance(as_of, str):
        where, params = _record_time(f"{alias}v", as_of)
        return (f" JOIN {{versions}} {alias}v ON {alias}v.position_from = {alias}.position_from", " AND ".join(where),
                params)
    where, params = _record_time(alias, as_of)
    return "", " AND ".join(where), params


def _record_time(alias: str, as_of: AsOf) -> tuple[list[str], list[Any]]:
    """The condition for rows that were current at record time ``as_of`` (now if None)."""
    if as_of is None:
        return [f"{alias}.position_to IS NULL"], []
    start, _ = _record_column(as_of)
    end = "position_to" if start == "position_from" else "recorded_to"
    return [f"{alias}.{start} <= ?", f"({alias}.{end} IS NULL OR {alias}.{end} > ?)"], [as_of, as_of]


def _encode_cursor(key: list[Any], as_of: AsOf) -> str:
    raw = json.dumps([key, as_of], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[list[Any], AsOf]:
    try:
        key, as_of = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        earliest, latest, position = key
        days = (earliest, latest)
        if not (all(isinstance(d, str) and d.isascii() and len(d) <= 16 for d in days)  # dates as the rows hold them
                and isinstance(position, int) and 0 <= position <= MAX_POSITION):
            raise TypeError
        return [earliest, latest, position], parse_as_of(as_of)
    except (ValueError, TypeError, BadQuery):
        raise BadQuery("cursor", "is not a cursor this service gave out") from None

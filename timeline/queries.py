"""Read queries: every read the API serves, as plain data from the projections' tables.

Record time (``as_of``) is either a log position or an RFC 3339 timestamp: the record
exactly as it stood then. Valid time (``at``, ``from``/``to``) is in ISO days, compared
with each development's ``earliest``/``latest``.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from events.vocabulary import CATEGORIES, QUAD_CLASSES
from timeline.projections import Actors, Developments
from timeline.projector import Projector
from timeline.text import fold

AsOf = int | str | None
TREND_DAYS = 90
MAX_POSITION = 2**63 - 1
"""Log positions are 64-bit integers in both stores."""


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
    items: list[dict[str, Any]]
    next_cursor: str | None
    as_of: AsOf
    """The record time the page shows (pinned for every following page)."""


class Reader:
    """Queries over the live projections of one store."""

    def __init__(self, projector: Projector):
        self.projector = projector
        developments = next(p for p in projector.projections if isinstance(p, Developments))
        actors = next(p for p in projector.projections if isinstance(p, Actors))
        self.view = projector.view
        self.tables = {**developments.tables, **{f"actor_{k}": v for k, v in actors.tables.items()}}

    def _select(self, statement: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.view.select(statement, self.tables, params)

    # Developments

    def timeline(self, query: TimelineQuery) -> Page:
        as_of = query.as_of
        after = None
        if query.cursor:
            after, as_of = _decode_cursor(query.cursor)
            where, params = _record_time("v", as_of)
        elif as_of is None:
            # The first page of the current record: the rows current now (an index equality
            # on position_to), pinned to this position for the pages that follow.
            as_of = self.projector.position()
            where, params = ["v.position_to IS NULL", "v.position_from <= ?"], [as_of]
        else:
            where, params = _record_time("v", as_of)
        if query.actors or query.role:
            # Candidates come from the actors index (actor, earliest, latest, ...), bounded by
            # the date range, and are looked up by primary key: far fewer rows than scanning
            # the timeline order for an actor's developments.
            conditions, values = [], []
            if query.actors:
                conditions.append(f"a.actor IN ({_marks(query.actors)})")
                values += query.actors
            if query.role:
                conditions.append("a.role = ?")
                values.append(query.role)
            for condition, value in _bounds("a", query):
                conditions.append(condition)
                values.append(value)
            where.append(f"(v.first_position, v.position_from) IN (SELECT a.first_position, a.position_from "
                         f"FROM {{actors}} a WHERE {' AND '.join(conditions)})")
            params += values
        if query.involving:
            where.append("EXISTS (SELECT 1 FROM {actors} i WHERE i.first_position = v.first_position "
                         "AND i.position_from = v.position_from AND i.actor = ?)")
            params.append(query.involving)
        for column, values in (("category", query.categories), ("certainty", query.certainties)):
            if values:
                where.append(f"v.{column} IN ({_marks(values)})")
                params += values
        if query.tags:
            where.append(f"EXISTS (SELECT 1 FROM {{tags}} t WHERE t.first_position = v.first_position AND t.position_from = v.position_from "
                         f"AND t.tag IN ({_marks(query.tags)}))")
            params += query.tags
        for condition, value in _bounds("v", query):
            where.append(condition)
            params.append(value)
        if query.q:
            pattern = "%" + fold(query.q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(v.search LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM {actors} a "
                         "JOIN {actor_terms} n ON n.slug = a.actor WHERE a.first_position = v.first_position AND "
                         "a.position_from = v.position_from AND n.term LIKE ? ESCAPE '\\'))")
            params += [pattern, pattern]
        direction = "DESC" if query.order == "desc" else "ASC"
        if after is not None:
            where.append(f"(v.earliest, v.latest, v.first_position) {'<' if direction == 'DESC' else '>'} (?, ?, ?)")
            params += after
        rows = self._select(
            f"SELECT v.doc, v.earliest, v.latest, v.first_position FROM {{versions}} v WHERE {' AND '.join(where)} "
            f"ORDER BY v.earliest {direction}, v.latest {direction}, v.first_position {direction} LIMIT ?",
            [*params, query.limit + 1],
        )
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = None
        if more and rows:
            last = rows[-1]
            cursor = _encode_cursor([last["earliest"], last["latest"], last["first_position"]], as_of)
        return Page([json.loads(row["doc"]) for row in rows], cursor, as_of)

    def development(self, ident: str, as_of: AsOf = None) -> dict[str, Any] | None:
        """A development as the record states it (or stated it at ``as_of``), retracted or not."""
        if as_of is None:
            rows = self._select("SELECT h.version, h.retracted, v.doc FROM {heads} h JOIN {versions} v ON "
                                "v.first_position = h.first_position AND v.position_from = h.doc_from WHERE h.id = ?",
                                [ident])
            if not rows:
                return None
            return {**json.loads(rows[0]["doc"]), "version": rows[0]["version"],
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
        return {**json.loads(rows[0]["doc"]), "version": rows[0]["version"], "retracted": retracted}

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
        if as_of is None:
            rows = self._select("SELECT doc FROM {actor_heads} WHERE slug = ?", [slug])
        else:
            where, params = _record_time("v", as_of)
            rows = self._select(f"SELECT doc FROM {{actor_versions}} v WHERE v.slug = ? AND {' AND '.join(where)}",
                                [slug, *params])
        return json.loads(rows[0]["doc"]) if rows else None

    def actors(self, q: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Actors whose id, names or aliases (any language) contain ``q``."""
        if not q:
            rows = self._select("SELECT doc FROM {actor_heads} ORDER BY slug LIMIT ?", [limit])
        else:
            pattern = "%" + fold(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._select(
                "SELECT doc FROM {actor_heads} WHERE slug IN (SELECT slug FROM {actor_terms} "
                "WHERE term LIKE ? ESCAPE '\\') ORDER BY slug LIMIT ?", [pattern, limit])
        return [json.loads(row["doc"]) for row in rows]

    def actor_state(self, slug: str, at: str | None = None, as_of: AsOf = None) -> dict[str, Any] | None:
        """What the record says about an actor on day ``at`` (default today), as the
        record stood at ``as_of`` (default now): profile, attributes, relations and
        involvement."""
        profile = self.actor(slug, as_of)
        if profile is None:
            return None
        at = at or date.today().isoformat()
        where, params = _record_time("v", as_of)
        record_time = " AND ".join(where)
        attributes = self._attributes(slug, at, record_time, params)
        # The actor's own rows drive each query (CROSS JOIN keeps SQLite from starting at
        # the timeline index); documents are read only for the rows shown.
        shared = self._select(
            f"SELECT o.actor AS other, v.id, v.earliest, v.category, v.first_position, v.position_from "
            f"FROM {{actors}} me CROSS JOIN {{versions}} v CROSS JOIN {{actors}} o "
            f"WHERE me.actor = ? AND me.earliest <= ? AND v.first_position = me.first_position "
            f"AND v.position_from = me.position_from AND {record_time} AND o.first_position = me.first_position "
            f"AND o.position_from = me.position_from AND o.actor <> me.actor", [slug, at, *params])
        involved = self._select(
            f"SELECT me.role, v.id, v.category, v.earliest, v.latest FROM {{actors}} me CROSS JOIN {{versions}} v "
            f"WHERE me.actor = ? AND me.earliest <= ? AND v.first_position = me.first_position "
            f"AND v.position_from = me.position_from AND {record_time}", [slug, at, *params])
        relations = _relations(shared, at)
        titles = self._titles([r["last"] for r in relations.values()])
        for relation in relations.values():
            relation["last"] = {"development": relation["last"]["id"], **titles[relation["last"]["key"]],
                                "category": relation["last"]["category"]}
        return {
            "actor": slug,
            "at": at,
            "as_of": as_of,
            "profile": {k: profile.get(k) for k in ("id", "name", "names", "aliases", "kind", "description",
                                                     "wikidata")},
            "attributes": attributes,
            "relations": relations,
            "involvement": _involvement(involved),
        }

    def _titles(self, rows: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
        """Title and date of the given version rows, read in one query."""
        if not rows:
            return {}
        found = self._select(
            f"SELECT first_position, position_from, doc FROM {{versions}} "
            f"WHERE first_position IN ({_marks(rows)})", [r["key"][0] for r in rows])
        wanted = {r["key"] for r in rows}
        titles = {}
        for row in found:
            key = (row["first_position"], row["position_from"])
            if key in wanted:
                doc = json.loads(row["doc"])
                titles[key] = {"title": doc["title"], "when": doc["when"]}
        return titles

    def _attributes(self, slug: str, at: str, record_time: str, params: list[Any]) -> dict[str, Any]:
        rows = self._select(
            f"SELECT e.attribute, e.value, e.earliest, e.first_position, v.id, v.position_from FROM {{effects}} e "
            f"CROSS JOIN {{versions}} v WHERE e.actor = ? AND e.earliest <= ? AND "
            f"v.first_position = e.first_position AND v.position_from = e.position_from AND {record_time} "
            f"ORDER BY e.attribute, e.earliest, e.first_position", [slug, at, *params])
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[row["attribute"]] = row
        docs = {}
        if latest:
            keys = {(r["first_position"], r["position_from"]) for r in latest.values()}
            for row in self._select(f"SELECT first_position, position_from, doc FROM {{versions}} "
                                    f"WHERE first_position IN ({_marks(list(keys))})", [k[0] for k in keys]):
                if (row["first_position"], row["position_from"]) in keys:
                    docs[row["first_position"], row["position_from"]] = row["doc"]
        attributes = {}
        for name, row in latest.items():
            value = json.loads(row["value"])
            if value is None:
                continue
            doc = json.loads(docs[row["first_position"], row["position_from"]])
            attributes[name] = {"value": value, "development": row["id"], "title": doc["title"],
                                "when": doc["when"], "earliest": row["earliest"], "sources": doc["sources"]}
        return attributes


def _details(row: dict[str, Any]) -> dict[str, Any]:
    """What an event of a development's history changed: for its recording, everything."""
    if row["type"] == "recorded":
        stated = json.loads(row["doc"])
        return {"stated": {k: v for k, v in stated.items() if k not in ("id", "version", "recorded_at", "recorded_by")}}
    return json.loads(row["details"]) if row["details"] else {}


def _relations(rows: list[dict[str, Any]], at: str) -> dict[str, dict[str, Any]]:
    day = date.fromisoformat(at)
    recent_from = _days_before(day, TREND_DAYS)
    before_from = _days_before(day, 2 * TREND_DAYS)
    relations: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    for row in sorted(rows, key=lambda r: (r["earliest"], r["first_position"])):
        if (row["other"], row["id"]) in seen:  # one development counts once, whatever the roles
            continue
        seen.add((row["other"], row["id"]))
        relation = relations.setdefault(row["other"], {
            "counts": dict.fromkeys(QUAD_CLASSES, 0), "developments": 0, "score": 0.0,
            "last": None, "recent_score": 0.0, "previous_score": 0.0})
        info = CATEGORIES[row["category"]]
        relation["counts"][info.quad_class] += 1
        relation["developments"] += 1
        relation["score"] += info.weight
        if row["earliest"] > recent_from:
            relation["recent_score"] += info.weight
        elif row["earliest"] > before_from:
            relation["previous_score"] += info.weight
        relation["last"] = {"id": row["id"], "key": (row["first_position"], row["position_from"]),
                            "category": row["category"]}
    for relation in relations.values():
        difference = relation["recent_score"] - relation["previous_score"]
        relation["trend"] = "warming" if difference > 0 else "cooling" if difference < 0 else "steady"
    return relations


def _days_before(day: date, days: int) -> str:
    """The ISO day ``days`` before ``day`` (the calendar's first day at the earliest)."""
    return (day - timedelta(days=days)).isoformat() if day > date.min + timedelta(days=days) else date.min.isoformat()


def _involvement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_role = Counter(row["role"] for row in rows)
    developments = {row["id"]: row for row in rows}
    by_category = Counter(row["category"] for row in developments.values())
    return {
        "developments": len(developments),
        "by_role": dict(sorted(by_role.items())),
        "by_category": dict(sorted(by_category.items())),
        "first": min((r["earliest"] for r in rows), default=None),
        "last": max((r["latest"] for r in rows), default=None),
    }


def _bounds(alias: str, query: TimelineQuery) -> list[tuple[str, str]]:
    """The valid-time conditions of a query: overlapping (default) or within the range."""
    if query.match == "within":
        bounds = ((f"{alias}.earliest >= ?", query.date_from), (f"{alias}.latest <= ?", query.date_to))
    else:
        bounds = ((f"{alias}.latest >= ?", query.date_from), (f"{alias}.earliest <= ?", query.date_to))
    return [(condition, value) for condition, value in bounds if value]


def _marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


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
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _record_column(as_of: AsOf) -> tuple[str, Any]:
    return ("position_from", as_of) if isinstance(as_of, int) else ("recorded_from", as_of)


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
        if not (isinstance(earliest, str) and isinstance(latest, str) and isinstance(position, int)):
            raise TypeError
        return [earliest, latest, position], parse_as_of(as_of)
    except (ValueError, TypeError, BadQuery):
        raise BadQuery("cursor", "is not a cursor this service gave out") from None

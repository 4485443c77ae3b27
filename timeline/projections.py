"""Projections: the event log replayed into read tables.

Each projection turns a batch of domain events into row operations that the view
writes in one transaction with the batch's tracking position. State a later event
needs (the development as it stands) is read from the view's ``heads`` tables, or
from the batch itself when the same batch touched it.

Bitemporal: every version of a development is a row of ``development_versions`` with
its valid time (``earliest``/``latest``) and its record time (``position_from`` /
``position_to`` and ``recorded_from``/``recorded_to``: between which log positions and
times this version was the current one). A retraction closes the last version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from eventsourcing.persistence import Mapper, Notification, Tracking
from eventsourcing.projection import Projection

from events.actor import Actor
from events.development import Development
from events.vocabulary import CATEGORIES, QUAD_CLASSES
from timeline.text import fold
from timeline.views import Operation, ReadTables, Row

Positioned = tuple[Any, int]
"""A domain event and its position in the log."""


def timestamp(event: Any) -> str:
    return event.timestamp.isoformat(timespec="microseconds")


def dumps(value: Any) -> str:
    """Compact JSON (msgspec's encoder: several times faster than the json module's)."""
    return _encode(value).decode()


_encode = msgspec.json.Encoder().encode


class ReadModel(Projection[ReadTables]):
    """A projection whose read tables can be dropped, rebuilt, and built beside the live
    ones under a prefix (for ``timeline replay --check``)."""

    TABLES: dict[str, str] = {}
    SCHEMA: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    replayable = True
    """Whether ``timeline replay`` (all projections) rebuilds it."""
    version = 1
    """The shape of the tables: a new version is rebuilt from the log on first use."""

    def __init__(self, view: ReadTables, prefix: str = ""):
        super().__init__(view)
        self.prefix = prefix
        self.tables = {key: prefix + name for key, name in self.TABLES.items()}
        self.tracking_name = self.tracking_key(prefix)

    @classmethod
    def tracking_key(cls, prefix: str = "") -> str:
        """The name its position is tracked under: the projection's, and its tables' version."""
        return f"{prefix}{cls.name}" + (f".v{cls.version}" if cls.version > 1 else "")

    def ensure_tables(self) -> None:
        """Creates the tables; tables of an older version (no tracking under this version's
        name) are dropped first, so that they are rebuilt from the log. New tables are
        tracked at position 0 at once, so that the next process to start (they take turns)
        keeps them."""
        with self.view.schema_lock():
            if self.view.max_tracking_id(self.tracking_name) is None:
                if self.version > 1:
                    self.drop_tables()
                self.create_tables()
                self.start_tracking()
            else:
                self.create_tables()

    def start_tracking(self) -> None:
        """Tracks new, empty tables at position 0, as this version's."""
        self.view.apply([], self.tables, Tracking(self.tracking_name, 0))

    def create_tables(self, indexes: bool = True) -> None:
        """Creates the tables; secondary indexes too unless a rebuild defers them (building
        them once at the end is faster than maintaining them row by row)."""
        self.view.execute([s for s in self.SCHEMA if indexes or not s.startswith("CREATE INDEX")], self.tables)

    def drop_tables(self) -> None:
        self.view.execute([f"DROP TABLE IF EXISTS {{{key}}}" for key in self.tables], self.tables)
        self.view.forget(self.tracking_name)

    def position(self) -> int:
        return self.view.max_tracking_id(self.tracking_name) or 0

    def decode(self, notification: Notification, mapper: Mapper) -> Any:
        """What this projection is given for a stored event: the domain event."""
        return mapper.to_domain_event(notification)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.process_batch([(domain_event, tracking.notification_id)], tracking.notification_id)

    def process_batch(self, events: Sequence[Positioned], position: int) -> None:
        """Applies events, and records ``position`` (the last one read) as processed."""
        self.view.apply(self.operations(events), self.tables, Tracking(self.tracking_name, position))

    def operations(self, events: Sequence[Positioned]) -> list[Operation]:
        raise NotImplementedError

    def states(self) -> dict[tuple[str, int], dict[str, Any]]:
        """What the last :meth:`operations` left of each thing it changed, by id and
        version, as the read queries answer it (for the answer of the write that made
        it, without reading it back): none, unless a projection says otherwise."""
        return {}

    def select(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.view.select(statement, self.tables, params)


RELATION_TOTALS = ("developments", "score", *QUAD_CLASSES)
"""The columns of a relation's totals, in the order of the table."""


class Developments(ReadModel):
    """Developments: their versions (the timeline), current heads, and history."""

    name = "developments"
    version = 7  # 7: the search text folded as timeline.text.fold folds it now
    topics = tuple(
        cls.TOPIC for cls in (Development.Recorded, Development.Corrected, Development.SourceAdded,
                              Development.Retracted, Development.Restored)
    )
    TABLES = {
        "heads": "development_heads",
        "versions": "development_versions",
        "briefs": "development_briefs",
        "search": "development_search",
        "actors": "development_actors",
        "pairs": "development_pairs",
        "relations": "development_relations",
        "tags": "development_tags",
        "effects": "development_effects",
        "history": "development_history",
        "categories": "development_categories",
    }
    """``search`` is SQLite's FTS5 index (PostgreSQL indexes ``versions.search`` itself);
    ``categories`` is the vocabulary's weight of each category and its quad class (a 1 in
    that class's column), written from ``events.vocabulary`` whenever the tables are made,
    not from the log, so that relations sum them in SQL."""
    SCHEMA = (
        # A development is keyed by the position of its recording (first_position), a
        # version by the position of the event that made it (position_from): keys that
        # grow with the log keep B-tree inserts at the right edge, where random UUID keys
        # would dirty a page per row. Only heads is keyed by id. A version's actors and
        # effects carry its dates, category and position_to, so that actor filters and
        # actor state are answered from their indexes alone.
        "CREATE TABLE IF NOT EXISTS {heads} (id TEXT PRIMARY KEY, first_position BIGINT NOT NULL, "
        "version INTEGER NOT NULL, retracted INTEGER NOT NULL, open_from BIGINT, doc_from BIGINT NOT NULL)"
        "{without_rowid}",
        "CREATE TABLE IF NOT EXISTS {versions} (first_position BIGINT NOT NULL, position_from {position_key}, "
        "position_to BIGINT, recorded_from TEXT NOT NULL, recorded_to TEXT, id TEXT NOT NULL, "
        "version INTEGER NOT NULL, earliest TEXT NOT NULL, latest TEXT NOT NULL, category TEXT NOT NULL, "
        "certainty TEXT NOT NULL, search TEXT NOT NULL, doc TEXT NOT NULL)",
        # What a relation shows of its last development, per version: a few hundred are
        # read at random per actor state, from a table a tenth of the size of versions.
        "CREATE TABLE IF NOT EXISTS {briefs} (position_from {position_key}, id TEXT NOT NULL, title TEXT NOT NULL, "
        "when_stated TEXT NOT NULL, category TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {actors} (first_position BIGINT NOT NULL, position_from BIGINT NOT NULL, "
        "position_to BIGINT, actor TEXT NOT NULL, role TEXT NOT NULL, earliest TEXT NOT NULL, latest TEXT NOT NULL, "
        "category TEXT NOT NULL, first_role INTEGER NOT NULL, PRIMARY KEY (first_position, position_from, actor, role))"
        "{without_rowid}",
        # Each pair of actors a version involves, both ways round: what actor state's
        # relations sum, per other actor, in the order of an index.
        "CREATE TABLE IF NOT EXISTS {pairs} (first_position BIGINT NOT NULL, position_from BIGINT NOT NULL, "
        "position_to BIGINT, actor TEXT NOT NULL, other TEXT NOT NULL, earliest TEXT NOT NULL, category TEXT NOT NULL, "
        "PRIMARY KEY (first_position, position_from, actor, other)){without_rowid}",
        # What the current record sums to per pair over all time: actor state at a late
        # day subtracts the few later pairs instead of summing all the earlier ones. Only
        # pairs that share a current development have a row.
        "CREATE TABLE IF NOT EXISTS {relations} (actor TEXT NOT NULL, other TEXT NOT NULL, "
        "developments INTEGER NOT NULL, score DOUBLE PRECISION NOT NULL, "
        + ", ".join(f"{quad} INTEGER NOT NULL" for quad in QUAD_CLASSES) + ", PRIMARY KEY (actor, other)){without_rowid}",
        "CREATE TABLE IF NOT EXISTS {tags} (first_position BIGINT NOT NULL, position_from BIGINT NOT NULL, "
        "tag TEXT NOT NULL, PRIMARY KEY (first_position, position_from, tag)){without_rowid}",
        "CREATE TABLE IF NOT EXISTS {effects} (first_position BIGINT NOT NULL, position_from BIGINT NOT NULL, "
        "position_to BIGINT, actor TEXT NOT NULL, attribute TEXT NOT NULL, value TEXT NOT NULL, "
        "earliest TEXT NOT NULL, PRIMARY KEY (position_from, actor, attribute)){without_rowid}",
        "CREATE TABLE IF NOT EXISTS {history} (first_position BIGINT NOT NULL, version INTEGER NOT NULL, "
        "position BIGINT NOT NULL, type TEXT NOT NULL, recorded_at TEXT NOT NULL, recorded_by TEXT NOT NULL, "
        "reason TEXT, details TEXT, PRIMARY KEY (first_position, version))",
        "CREATE TABLE IF NOT EXISTS {categories} (category TEXT PRIMARY KEY, weight DOUBLE PRECISION NOT NULL, "
        + ", ".join(f"{quad} INTEGER NOT NULL" for quad in QUAD_CLASSES) + "){without_rowid}",
        # What each index serves: the README's "Indexes" section.
        "CREATE INDEX IF NOT EXISTS {versions_name}_current ON {versions} (position_to, earliest, latest, first_position)",
        "CREATE INDEX IF NOT EXISTS {versions_name}_order ON {versions} (earliest, latest, first_position)",
        "CREATE INDEX IF NOT EXISTS {versions_name}_development ON {versions} (first_position, position_from)",
        "CREATE INDEX IF NOT EXISTS {actors_name}_actor ON {actors} (actor, earliest, latest, position_to, category, "
        "role, first_position, position_from, first_role)",
        "CREATE INDEX IF NOT EXISTS {actors_name}_involvement ON {actors} (actor, position_to, role, category, "
        "earliest, latest, first_role)",
        "CREATE INDEX IF NOT EXISTS {pairs_name}_actor ON {pairs} (actor, other, earliest, first_position, "
        "position_from, position_to, category)",
        "CREATE INDEX IF NOT EXISTS {effects_name}_actor ON {effects} (actor, attribute, earliest, first_position, "
        "position_from, position_to, value)",
    )
    TEXT_INDEX = {
        # Substring search over the folded text (timeline.text.fold) of every version, by
        # trigrams. SQLite: an FTS5 table that stores no text of its own (external
        # content: versions.search) and knows rows by their rowid, position_from; it is a
        # table the projection writes, so it is made with the tables.
        "sqlite": ("CREATE VIRTUAL TABLE IF NOT EXISTS {search} USING fts5(search, content='{versions_name}', "
                   "content_rowid='position_from', tokenize='trigram')",),
        # PostgreSQL: a GIN index of pg_trgm on the column, which LIKE '%…%' uses; like the
        # other indexes, a replay builds it at the end.
        "postgresql": ("CREATE EXTENSION IF NOT EXISTS pg_trgm",
                       "CREATE INDEX IF NOT EXISTS {versions_name}_search ON {versions} USING gin (search gin_trgm_ops)"),
    }

    def __init__(self, view: ReadTables, prefix: str = ""):
        super().__init__(view, prefix)
        self.fts = view.dialect.name == "sqlite"
        self.deferred = False
        """Whether this process made the tables without their indexes, for a rebuild."""
        if not self.fts:
            del self.tables["search"]
        self._last: _DevelopmentBatch | None = None

    def create_tables(self, indexes: bool = True) -> None:
        # Tables without their indexes were left by a rebuild (ending here, or killed and
        # caught up by another process): once the indexes are made, FTS5 merges the
        # segments the batches wrote into one (which halves the time of a lookup at a
        # million versions), and the relation totals, which a rebuild leaves out, are summed.
        rebuilt = indexes and not self.view.exists(f"{self.tables['pairs']}_actor")
        super().create_tables(indexes)
        text_index = self.TEXT_INDEX[self.view.dialect.name]
        self.view.execute([s for s in text_index if indexes or not s.startswith("CREATE INDEX")], self.tables)
        if self.fts and rebuilt:
            self.view.execute(["INSERT INTO {search} ({search}) VALUES ('optimize')"], self.tables)
        self.deferred = not indexes
        self._weigh_categories(sum_relations=rebuilt)

    def _weigh_categories(self, sum_relations: bool) -> None:
        """Writes the vocabulary's weights and quad classes into ``categories``. If they
        changed (so that a changed weight needs no replay), or at the end of a rebuild
        (which leaves the totals out: one pass over the pairs index, 3.7 s at a million
        developments, instead of an upsert per actor pair in every batch), the relation
        totals are summed from the pairs, in the same transaction."""
        weighed = [(name, info.weight, *(int(info.quad_class == quad) for quad in QUAD_CLASSES))
                   for name, info in CATEGORIES.items()]
        changed = {tuple(row.values()) for row in self.select("SELECT * FROM {categories}")} != set(weighed)
        if not (changed or sum_relations):
            return
        self.view.write([
            (f"INSERT INTO {{categories}} VALUES ({_marks(2 + len(QUAD_CLASSES))}) ON CONFLICT (category) "
             f"DO UPDATE SET weight = excluded.weight, " + ", ".join(f"{quad} = excluded.{quad}" for quad in QUAD_CLASSES),
             weighed),
            ("DELETE FROM {relations}", [()]),
            (f"INSERT INTO {{relations}} ({', '.join(('actor', 'other', *RELATION_TOTALS))}) SELECT p.actor, p.other, "
             f"COUNT(*), SUM(c.weight), {', '.join(f'SUM(c.{quad})' for quad in QUAD_CLASSES)} FROM {{pairs}} p "
             f"JOIN {{categories}} c ON c.category = p.category WHERE p.position_to IS NULL GROUP BY p.actor, p.other",
             [()]),
        ], self.tables)

    def operations(self, events: Sequence[Positioned]) -> list[Operation]:
        batch = _DevelopmentBatch(self)
        batch.load({str(event.originator_id) for event, _ in events if type(event) is not Development.Recorded})
        for event, position in events:
            batch.apply(event, position)
        self._last = batch
        return batch.operations()

    def states(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Each development the last batch changed, as :meth:`Reader.development` answers
        it (a state, its stream's version and whether it is retracted)."""
        return self._last.states() if self._last is not None else {}


class _DevelopmentBatch:
    """The rows one batch of development events produces.

    A development's state lives in its version rows only (``heads`` points at the row
    holding the latest state), so each state is written once. A change made while the
    development is retracted gets a row that is closed at birth: it holds the state
    but is current at no record time, and has no actor, tag or effect rows.
    """

    def __init__(self, projection: Developments):
        self.projection = projection
        self.heads: dict[str, dict[str, Any]] = {}
        self.new_versions: dict[tuple[str, int], list[Any]] = {}
        self.stated: dict[tuple[str, int], dict[str, Any]] = {}
        """The state of each new open version, for its actor, tag and effect rows."""
        self.closed: list[tuple[Any, ...]] = []
        self.relations: dict[tuple[str, str], list[Any]] = {}
        """Per actor pair, the change to its relation totals: developments, score and
        counts by quad class."""
        self.history: list[tuple[Any, ...]] = []
        self.left: dict[tuple[str, int], tuple[dict[str, Any], bool]] = {}
        """What each event left, by development and version: its state and whether retracted."""

    def apply(self, event: Any, position: int) -> None:
        """Applies an event, and notes what it left for the answer of its write."""
        ident = self._apply(event, position)
        head = self.heads[ident]
        self.left[(ident, head["version"])] = (head["doc"], head["retracted"])

    def _apply(self, event: Any, position: int) -> str:
        """Applies an event; answers the development's id."""
        ident = str(event.originator_id)
        kind = type(event)
        self.now = timestamp(event)
        if kind is Development.Recorded:
            doc = {name: getattr(event, name) for name in Development.Recorded.__annotations__}
            doc.update(id=ident, recorded_at=self.now)
            head = {"version": 1, "retracted": False, "first_position": position, "open_from": None,
                    "doc_from": None, "doc": doc}
            self.heads[ident] = head
            self._history(event, ident, position, "recorded", None, None)
            self._write(ident, head, event, position)
            return ident
        head = self.heads.get(ident)
        if head is None:  # the log is ahead of this projection's view of it: cannot happen
            raise LookupError(f"event for unknown development {ident} at position {position}")
        head["version"] = event.originator_version
        stated = head["doc"]  # the open version's state, if one is open, before this event
        if kind is Development.Corrected:
            head["doc"] = {**head["doc"], **event.changes, "sources": [*head["doc"]["sources"], *event.sources]}
            self._history(event, ident, position, "corrected", event.reason,
                          {"changes": event.changes, "sources": event.sources})
        elif kind is Development.SourceAdded:
            head["doc"] = {**head["doc"], "sources": [*head["doc"]["sources"], event.source]}
            self._history(event, ident, position, "source_added", None, {"source": event.source})
        elif kind is Development.Retracted:
            head["retracted"] = True
            self._history(event, ident, position, "retracted", event.reason,
                          {"superseded_by": event.superseded_by} if event.superseded_by else None)
        elif kind is Development.Restored:
            head["retracted"] = False
            self._history(event, ident, position, "restored", event.reason, None)
        self._close(ident, head, stated, position)
        if kind is not Development.Retracted:
            self._write(ident, head, event, position)
        return ident

    def states(self) -> dict[tuple[str, int], dict[str, Any]]:
        return {(ident, version): {**doc, "version": version, "retracted": retracted}
                for (ident, version), (doc, retracted) in self.left.items()}

    def load(self, idents: set[str]) -> None:
        """The heads of developments that the batch changes, in one query: one per event
        would make a round trip each."""
        if not idents:
            return
        rows = self.projection.select(
            f"SELECT h.id, h.version, h.retracted, h.first_position, h.open_from, h.doc_from, v.doc FROM {{heads}} h "
            f"JOIN {{versions}} v ON v.position_from = h.doc_from WHERE h.id IN ({_marks(len(idents))})", list(idents))
        for row in rows:
            self.heads[row.pop("id")] = {**row, "retracted": bool(row["retracted"]), "doc": json.loads(row["doc"])}

    def _write(self, ident: str, head: dict[str, Any], event: Any, position: int) -> None:
        """Writes the development's state as a new version row: open (current from here
        on), or closed at birth while the development is retracted."""
        doc = head["doc"] = {**head["doc"], "version": head["version"]}
        retracted = head["retracted"]
        head["doc_from"] = position
        head["open_from"] = None if retracted else position
        self.new_versions[(ident, position)] = [
            head["first_position"], position, position if retracted else None, self.now,
            self.now if retracted else None, ident, head["version"],
            doc["earliest"], doc["latest"], doc["category"], doc["certainty"],
            fold(f"{doc['title']}\n{doc.get('summary') or ''}"), dumps(doc),
        ]
        if not retracted:
            self.stated[(ident, position)] = doc

    def _close(self, ident: str, head: dict[str, Any], stated: dict[str, Any], position: int) -> None:
        """Closes the open version, if any, whose state was ``stated``."""
        opened = head["open_from"]
        if opened is None:
            return
        head["open_from"] = None
        row = self.new_versions.get((ident, opened))
        if row is not None:
            row[2], row[4] = position, self.now
        else:
            self.closed.append((position, self.now, head["first_position"], opened))
            self._count_relations(stated, -1)

    def _count_relations(self, stated: dict[str, Any], sign: int) -> None:
        """Adds (or, for a version that stops being current, takes away) a version's
        share of its actor pairs' relation totals; a rebuild sums them at its end."""
        if self.projection.deferred:
            return
        info = CATEGORIES[stated["category"]]
        quad = 2 + QUAD_CLASSES.index(info.quad_class)
        for pair in _actor_pairs(stated):
            totals = self.relations.setdefault(pair, [0, 0.0, *(0 for _ in QUAD_CLASSES)])
            totals[0] += sign
            totals[1] += sign * info.weight
            totals[quad] += sign

    def _history(self, event: Any, ident: str, position: int, kind: str, reason: str | None,
                 details: dict[str, Any] | None) -> None:
        self.history.append((self.heads[ident]["first_position"], event.originator_version, position, kind,
                             self.now,
                             event.recorded_by, reason, None if details is None else dumps(details)))

    def operations(self) -> list[Operation]:
        actors, pairs, briefs, tags, effects = [], [], [], [], []
        for key, doc in self.stated.items():
            first, position, closed = self.new_versions[key][:3]
            if closed is None:
                self._count_relations(doc, 1)
            briefs.append((position, doc["id"], doc["title"], doc["when"], doc["category"]))
            pairs.extend((first, position, closed, actor, other, doc["earliest"], doc["category"])
                         for actor, other in _actor_pairs(doc))
            shown: set[str] = set()
            for part in doc["actors"]:
                actor = part["actor"]
                # 1 on the actor's first row of the version, 0 on the rows of its further
                # roles: each development counts once, whatever the roles.
                actors.append((first, position, closed, actor, part["role"], doc["earliest"], doc["latest"],
                               doc["category"], int(actor not in shown)))
                shown.add(actor)
            for tag in dict.fromkeys(doc["tags"]):
                tags.append((first, position, tag))
            stated = {(e["actor"], e["attribute"]): e["value"] for e in doc["effects"]}
            for (actor, attribute), value in stated.items():
                effects.append((first, position, closed, actor, attribute, dumps(value), doc["earliest"]))
        heads = [(ident, h["first_position"], h["version"], int(h["retracted"]), h["open_from"], h["doc_from"])
                 for ident, h in self.heads.items()]
        versions = list(self.new_versions.values())
        relations = sorted(self.relations.items())  # in key order: each page of the table is visited once
        closing = [(position, first, opened) for position, _, first, opened in self.closed]
        return [
            ("UPDATE {versions} SET position_to = ?, recorded_to = ? WHERE position_from = ?",
             [(position, now, opened) for position, now, _, opened in self.closed]),
            ("UPDATE {actors} SET position_to = ? WHERE first_position = ? AND position_from = ?", closing),
            ("UPDATE {pairs} SET position_to = ? WHERE first_position = ? AND position_from = ?", closing),
            ("UPDATE {effects} SET position_to = ? WHERE position_from = ?", [(p, opened) for p, _, opened in closing]),
            ("INSERT INTO {versions} VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", versions),
            ("INSERT INTO {briefs} VALUES (?,?,?,?,?)", briefs),
            *([("INSERT INTO {search} (rowid, search) VALUES (?,?)", [(row[1], row[11]) for row in versions])]
              if self.projection.fts else []),
            ("INSERT INTO {actors} VALUES (?,?,?,?,?,?,?,?,?)", actors),
            ("INSERT INTO {pairs} VALUES (?,?,?,?,?,?,?)", pairs),
            (_ADD_TO_RELATIONS, [(actor, other, *totals) for (actor, other), totals in relations if any(totals)]),
            ("DELETE FROM {relations} WHERE actor = ? AND other = ? AND developments = 0",
             [pair for pair, totals in relations if totals[0] < 0]),
            ("INSERT INTO {tags} VALUES (?,?,?)", tags),
            ("INSERT INTO {effects} VALUES (?,?,?,?,?,?,?)", effects),
            ("INSERT INTO {history} VALUES (?,?,?,?,?,?,?,?)", self.history),
            ("INSERT INTO {heads} VALUES (?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
             "version = excluded.version, retracted = excluded.retracted, open_from = excluded.open_from, "
             "doc_from = excluded.doc_from", heads),
        ]


class Actors(ReadModel):
    """Actors: their versions (profile as of a record time) and search terms."""

    name = "actors"
    version = 2  # 2: the search terms folded as timeline.text.fold folds them now
    topics = (Actor.Registered.TOPIC, Actor.Corrected.TOPIC)
    TABLES = {"heads": "actor_heads", "versions": "actor_versions", "terms": "actor_terms"}
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS {heads} (stream_id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, "
        "version INTEGER NOT NULL, position BIGINT NOT NULL, doc TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {versions} (slug TEXT NOT NULL, position_from BIGINT NOT NULL, "
        "position_to BIGINT, recorded_from TEXT NOT NULL, recorded_to TEXT, version INTEGER NOT NULL, "
        "doc TEXT NOT NULL, PRIMARY KEY (slug, position_from))",
        # Searched by substring (LIKE '%…%'), which no B-tree serves: the table is read whole.
        "CREATE TABLE IF NOT EXISTS {terms} (slug TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (slug, term))",
    )

    def operations(self, events: Sequence[Positioned]) -> list[Operation]:
        heads: dict[str, dict[str, Any]] = {}
        new_versions: dict[tuple[str, int], list[Any]] = {}
        closed: list[tuple[Any, ...]] = []
        for event, position in events:
            stream = str(event.originator_id)
            if type(event) is Actor.Registered:
                doc = {name: getattr(event, name) for name in Actor.Registered.__annotations__}
                doc["id"] = doc.pop("slug")
                doc.update(registered_at=timestamp(event), version=1)
            else:
                previous = heads.get(stream) or self._head(stream)
                doc = {**previous["doc"], **event.changes, "version": event.originator_version}
                opened = new_versions.get((doc["id"], previous["position"]))
                if opened is not None:
                    opened[2], opened[4] = position, timestamp(event)
                else:
                    closed.append((position, timestamp(event), doc["id"], previous["position"]))
            heads[stream] = {"doc": doc, "position": position}
            new_versions[(doc["id"], position)] = [
                doc["id"], position, None, timestamp(event), None, doc["version"], dumps(doc)]
        slugs = [(h["doc"]["id"],) for h in heads.values()]
        terms = [(h["doc"]["id"], term) for h in heads.values() for term in _terms(h["doc"])]
        return [
            ("UPDATE {versions} SET position_to = ?, recorded_to = ? WHERE slug = ? AND position_from = ?", closed),
            ("INSERT INTO {versions} VALUES (?,?,?,?,?,?,?)", list(new_versions.values())),
            ("DELETE FROM {terms} WHERE slug = ?", slugs),
            ("INSERT INTO {terms} VALUES (?,?)", terms),
            ("INSERT INTO {heads} VALUES (?,?,?,?,?) ON CONFLICT (stream_id) DO UPDATE SET "
             "version = excluded.version, position = excluded.position, doc = excluded.doc",
             [(stream, h["doc"]["id"], h["doc"]["version"], h["position"], dumps(h["doc"]))
              for stream, h in heads.items()]),
        ]

    def _head(self, stream: str) -> dict[str, Any]:
        rows = self.select("SELECT position, doc FROM {heads} WHERE stream_id = ?", [stream])
        if not rows:
            raise LookupError(f"event for unknown actor stream {stream}")
        return {"position": rows[0]["position"], "doc": json.loads(rows[0]["doc"])}


def _terms(doc: dict[str, Any]) -> set[str]:
    names = [doc["id"], doc["name"], *doc.get("names", {}).values(), *doc.get("aliases", [])]
    return {fold(name) for name in names if name}


def _actor_pairs(stated: dict[str, Any]) -> list[tuple[str, str]]:
    """Each pair of a version's actors, both ways round, each actor once whatever its roles."""
    slugs = sorted({part["actor"] for part in stated["actors"]})
    return [(actor, other) for actor in slugs for other in slugs if other != actor]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


_ADD_TO_RELATIONS = (
    f"INSERT INTO {{relations}} AS r VALUES ({_marks(2 + len(RELATION_TOTALS))}) ON CONFLICT (actor, other) "
    f"DO UPDATE SET " + ", ".join(f"{column} = r.{column} + excluded.{column}" for column in RELATION_TOTALS))
"""Adds a batch's changes to relation totals, made once rather than for every batch."""


def quad_class(category: str) -> str:
    return CATEGORIES[category].quad_class


class Chain(ReadModel):
    """Tamper evidence: every stored event's hash, chained to its predecessor's in log
    order. Kept as a projection, so the write model stays the library's; not rebuilt by
    a plain ``timeline replay`` (that would re-hash whatever the store holds now)."""

    name = "chain"
    replayable = False
    TABLES = {"links": "event_chain"}
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS {links} (position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, "
        "version INTEGER NOT NULL, hash TEXT NOT NULL)",
    )
    GENESIS = "0" * 64

    def decode(self, notification: Notification, mapper: Mapper) -> Any:
        return notification  # the stored bytes are what is hashed

    def operations(self, events: Sequence[Positioned]) -> list[Operation]:
        previous = self.last_hash()
        rows = []
        for notification, position in events:
            previous = link(previous, notification)
            rows.append((position, str(notification.originator_id), notification.originator_version, previous))
        return [("INSERT INTO {links} VALUES (?,?,?,?)", rows)]

    def last_hash(self) -> str:
        rows = self.select("SELECT hash FROM {links} ORDER BY position DESC LIMIT 1")
        return rows[0]["hash"] if rows else self.GENESIS

    def hashes(self, after: int, until: int) -> dict[int, str]:
        rows = self.select("SELECT position, hash FROM {links} WHERE position > ? AND position <= ?", [after, until])
        return {row["position"]: row["hash"] for row in rows}


def link(previous: str, notification: Notification) -> str:
    """The hash of a stored event chained to the one before it."""
    digest = hashlib.sha256(f"{previous}\n{notification.originator_id}\n{notification.originator_version}\n"
                            f"{notification.topic}\n".encode())
    state = notification.state
    digest.update(state if isinstance(state, bytes) else str(state).encode())  # a tampered row may be text
    return digest.hexdigest()


PROJECTIONS: tuple[type[ReadModel], ...] = (Actors, Developments, Chain)
"""Every projection, by name; a new one is a new class added here."""


def by_name(names: Iterable[str] | None = None) -> list[type[ReadModel]]:
    known = {p.name: p for p in PROJECTIONS}
    if not names:
        return list(PROJECTIONS)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"no projection named {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]

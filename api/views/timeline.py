"""The timeline, filtered, paged by cursor, in JSON, CSV, JSON Lines or TimelineJS."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

import msgspec
from flask import Response, jsonify, request

from api import schemas
from api.auth import reads
from api.cache import kept_while_unchanged
from api.extension import Blueprint
from api.views.common import as_of, service
from timeline.queries import Page, TimelineQuery

blp = Blueprint("timeline", __name__, url_prefix="/api/v1/timeline", description="Timelines")
CSV_COLUMNS = ("id", "when", "earliest", "latest", "precision", "category", "certainty", "title", "actors",
               "tags", "version")


@blp.route("")
@reads
@kept_while_unchanged
@blp.arguments(schemas.TimelineArgs, location="query")
@blp.response(200, schemas.TimelinePage)
@blp.doc(responses=schemas.TIMELINE_RESPONSES)
def timeline(args):
    """Developments ordered by date; filters, record time ``as_of``, cursor pages."""
    return timeline_answer(args)


def timeline_answer(args: dict[str, Any], involving: str | None = None) -> Response:
    query = TimelineQuery(
        involving=involving,
        actors=args.get("actor", []), role=args.get("role"), categories=args.get("category", []),
        tags=args.get("tag", []), certainties=args.get("certainty", []),
        date_from=args["from_"].isoformat() if args.get("from_") else None,
        date_to=args["to"].isoformat() if args.get("to") else None,
        match=args["match"], q=args.get("q"), as_of=as_of(args), order=args["order"], limit=args["limit"],
        cursor=args.get("cursor"),
    )
    page = service().reader.timeline(query)
    response = FORMATS[args["format"]](page)
    if page.next_cursor:
        following = {**request.args.to_dict(flat=False), "cursor": [page.next_cursor]}
        response.headers["Link"] = f'<{request.base_url}?{urlencode(following, doseq=True)}>; rel="next"'
    return response


def _json(page: Page) -> Response:
    """The stored documents are embedded as they are: decoding and encoding them again
    cost a computed page a sixth of its CPU time in the server."""
    return jsonify(items=[msgspec.Raw(document) for document in page.documents], next_cursor=page.next_cursor,
                   as_of=page.as_of)


def _jsonl(page: Page) -> Response:
    return Response("".join(document + "\n" for document in page.documents), mimetype="application/x-ndjson")


def _csv(page: Page) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in page.items:
        writer.writerow(map(_cell, [
            *(item.get(c) for c in CSV_COLUMNS[:8]),
            ";".join(f"{a['actor']}:{a['role']}" for a in item["actors"]), ";".join(item.get("tags", [])),
            item.get("version"),
        ]))
    return Response(out.getvalue(), mimetype="text/csv")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet run a cell as a formula (CSV injection, CWE-1236)."""


def _cell(value: Any) -> Any:
    """A text a spreadsheet would run as a formula (a title ``=HYPERLINK(...)``) is
    written after a ``'``, which spreadsheets take as "this is text"; JSON keeps it as is."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _timelinejs(page: Page) -> Response:
    """Knight Lab TimelineJS JSON: fuzzy dates keep their EDTF as ``display_date``."""
    events = []
    for item in page.items:
        event = {
            "unique_id": item["id"], "group": item["category"],
            "start_date": _tl_date(item["earliest"], item["precision"]),
            "text": {"headline": item["title"], "text": item.get("summary") or ""},
        }
        if item["earliest"] != item["latest"]:
            event["end_date"] = _tl_date(item["latest"], item["precision"])
        if item["precision"] != "day" or item["qualified"]:
            event["display_date"] = item["when"]
        events.append(event)
    return jsonify(events=events)


def _tl_date(day: str, precision: str) -> dict[str, str]:
    year, month, dom = day.split("-")
    if precision in ("year", "decade", "century"):
        return {"year": str(int(year))}
    if precision in ("month", "season"):
        return {"year": str(int(year)), "month": str(int(month))}
    return {"year": str(int(year)), "month": str(int(month)), "day": str(int(dom))}


FORMATS = {"json": _json, "jsonl": _jsonl, "csv": _csv, "timelinejs": _timelinejs}

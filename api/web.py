"""The web page for people: the timeline at ``/`` and one page per actor.

Thin views: they render Jinja templates (autoescaped) that load ``static/timeline.js``
and ``static/timeline.css``; the script fetches the JSON API and draws plain SVG. Only
what a page needs before its script runs (the actor's name, a 404) is rendered here.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from api.auth import reads
from api.views.common import service

blp = Blueprint("web", __name__, template_folder="templates")


@blp.route("/")
@reads
def timeline_page():
    """The timeline: filters, lanes, zoom, details of a development."""
    return render_template("timeline.html")


@blp.route("/actors/<slug>")
@reads
def actor_page(slug: str):
    """An actor: profile, attributes at a date, relations, involvement."""
    profile = service().reader.actor(slug)
    if profile is None:
        return render_template("actor.html", slug=slug, profile=None), 404
    return render_template("actor.html", slug=slug, profile=profile)

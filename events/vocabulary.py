"""The controlled vocabulary of the record, kept in one place.

Categories follow PLOVER (plus ``statement`` and ``institutional``); each belongs to a
quad class and carries a Goldstein-style cooperation weight (-10 most hostile, +10
most cooperative) that the actor-relations projection sums.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

QuadClass = Literal[
    "verbal_cooperation",
    "material_cooperation",
    "verbal_conflict",
    "material_conflict",
    "neutral",
]


class CategoryInfo(NamedTuple):
    quad_class: QuadClass
    """Which of the four PLOVER/CAMEO quad classes (or neutral) the category falls in."""

    weight: float
    """Goldstein-style cooperation weight, from -10 (hostile) to +10 (cooperative)."""

    description: str
    """What a development of this category is, in one line."""


CATEGORIES: dict[str, CategoryInfo] = {
    "statement": CategoryInfo("neutral", 0.0, "A public statement, post or comment without a demand or threat."),
    "appeal": CategoryInfo("verbal_cooperation", 3.0, "A call on someone to act, help or talk."),
    "agree": CategoryInfo("verbal_cooperation", 4.0, "An agreement, ceasefire or accord is reached or signed."),
    "consult": CategoryInfo("verbal_cooperation", 1.0, "A meeting, call, visit or negotiation."),
    "support": CategoryInfo("verbal_cooperation", 3.5, "Declared political or diplomatic support."),
    "cooperate": CategoryInfo("material_cooperation", 6.0, "Joint action: an exercise, a shared operation, an exchange."),
    "aid": CategoryInfo("material_cooperation", 7.0, "Material, military, economic or humanitarian aid."),
    "concede": CategoryInfo("material_cooperation", 5.0, "A concession: easing of pressure, release, return."),
    "retreat": CategoryInfo("material_cooperation", 4.0, "A withdrawal of forces or of a representative, a demobilization."),
    "investigate": CategoryInfo("neutral", -0.5, "An inquiry or investigation."),
    "accuse": CategoryInfo("verbal_conflict", -3.0, "An accusation, blame or denunciation."),
    "demand": CategoryInfo("verbal_conflict", -4.0, "A demand, an ultimatum without force."),
    "reject": CategoryInfo("verbal_conflict", -4.0, "A refusal or rejection of a proposal or claim."),
    "threaten": CategoryInfo("verbal_conflict", -6.0, "A threat, veiled or open."),
    "protest": CategoryInfo("material_conflict", -6.5, "A demonstration, strike or boycott."),
    "sanction": CategoryInfo("material_conflict", -5.0, "Sanctions, expulsions, breaking of ties."),
    "mobilize": CategoryInfo("material_conflict", -7.0, "Mobilization or show of force."),
    "coerce": CategoryInfo("material_conflict", -7.5, "Coercion: blockade, arrests, seizure."),
    "assault": CategoryInfo("material_conflict", -10.0, "Use of armed force: an attack, an offensive, a military operation."),
    "institutional": CategoryInfo("neutral", 0.0, "An institutional fact: membership, basing, an office held."),
    "other": CategoryInfo("neutral", 0.0, "Anything the other categories do not cover."),
}

Category = Literal[
    "statement", "appeal", "agree", "consult", "support", "cooperate", "aid",
    "concede", "retreat", "investigate", "accuse", "demand", "reject", "threaten",
    "protest", "sanction", "mobilize", "coerce", "assault", "institutional", "other",
]

Role = Literal["initiator", "target", "participant", "speaker", "subject", "mediator", "guarantor"]
"""How an actor takes part in a development."""

Certainty = Literal["confirmed", "reported", "claimed", "disputed", "denied"]
"""How well the record's sources establish that the development happened."""

ActorKind = Literal["state", "organization", "person", "media", "armed_group", "other"]

LinkType = Literal["part_of", "response_to", "follows", "contradicts", "same_as"]

Precision = Literal["day", "month", "season", "year", "decade", "century", "range", "interval"]
"""Granularity of a development's date; ``range`` is one day out of several possible
("early September"), ``interval`` is something that lasted."""

QUAD_CLASSES: tuple[str, ...] = get_args(QuadClass)
ROLES: tuple[str, ...] = get_args(Role)
CERTAINTIES: tuple[str, ...] = get_args(Certainty)
ACTOR_KINDS: tuple[str, ...] = get_args(ActorKind)
LINK_TYPES: tuple[str, ...] = get_args(LinkType)
PRECISIONS: tuple[str, ...] = get_args(Precision)

assert set(get_args(Category)) == set(CATEGORIES), "Category literal and table disagree"

"""The rules a development or an actor must satisfy before it enters the record.

:func:`check_development` and :func:`check_actor` turn what a historian sent (plain
JSON-like data) into the payload that is stored, or raise :class:`InvalidInput` with
every bad field named by its path (``sources[0].quote``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec

from events import vocabulary
from events.dates import parse_when
from events.errors import InvalidInput
from events.values import (_CLEAN, ATTRIBUTE, COUNTRY_CODE, LANGUAGE_TAG, SLUG, URL, WIKIDATA_ID, ActorDetails,
                           DevelopmentDetails, Source)

ALLOWED = {
    "category": vocabulary.CATEGORIES,
    "certainty": vocabulary.CERTAINTIES,
    "role": vocabulary.ROLES,
    "kind": vocabulary.ACTOR_KINDS,
    "type": vocabulary.LINK_TYPES,
}
_FORMATS = {
    _CLEAN: "must not contain NUL characters or unpaired surrogates",
    SLUG: "must be an actor id like 'armenia' or 'united-states'",
    LANGUAGE_TAG: "must be a BCP 47 language tag like 'de' or 'hy'",
    URL: "must be an http(s) URL",
    ATTRIBUTE: "must be a dotted name like 'membership.csto'",
    COUNTRY_CODE: "must be an ISO 3166-1 alpha-3 country code like 'ARM'",
    WIKIDATA_ID: "must be a Wikidata id like 'Q399'",
}
_WHERE = re.compile(r"^(?P<message>.*?)(?: - at `(?P<key>[^`]*)` in `\$(?P<mapping>[^`]*)`| - at `\$(?P<path>[^`]*)`)?$", re.S)
_FIELD_NAMED = re.compile(r"Object (missing required|contains unknown) field `(.*)`$", re.S)
_REGEX = re.compile(r"Expected `str` matching regex '(.*)'$", re.S)
_LENGTH = re.compile(r"Expected `(str|array|object)` of length (>=|<=) (\d+)")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_INFINITE = re.compile(r"Expected `float` [<>]= -?1\.7976931348623157e\+308$")


def convert(data: object, shape: Any, field: str = "") -> Any:
    """Checks ``data`` against a :mod:`events.values` shape; errors name the field
    (under ``field``, when the data is one field of a larger input)."""
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError as error:
        path, message = _explain(str(error))
    except UnicodeEncodeError:
        path, message = _unpaired(data)
    if field:
        path = field if path == "body" else f"{field}{path}" if path.startswith("[") else f"{field}.{path}"
    raise InvalidInput.of(path, message) from None


def _unpaired(data: object) -> tuple[str, str]:
    """Where the first unpaired surrogate is, and why that is wrong: msgspec encodes field
    names and vocabulary terms as UTF-8 to look them up, and fails without saying where."""
    pending: list[tuple[str, object]] = [("", data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str) and _SURROGATE.search(value):
            return path or "body", _FORMATS[_CLEAN]
        items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
        inner = []
        for key, item in items:
            if isinstance(key, str) and _SURROGATE.search(key):
                return path or "body", "has a field name with an unpaired surrogate"
            inner.append((f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key, item))
        pending.extend(reversed(inner))
    return "body", _FORMATS[_CLEAN]


def _explain(raw: str) -> tuple[str, str]:
    parts = _WHERE.match(raw)
    assert parts is not None
    message = parts["message"]
    path = (parts["path"] or parts["mapping"] or "").lstrip(".")
    named = _FIELD_NAMED.match(message)
    if named:
        path = f"{path}.{named[2]}" if path else named[2]
        message = "is required" if named[1] == "missing required" else "is not a known field"
    elif regex := _REGEX.match(message):
        message = _FORMATS.get(regex[1].replace("\\\\", "\\"), "has the wrong format")
    elif length := _LENGTH.match(message):
        noun = "characters" if length[1] == "str" else "entries"
        if (length[2], length[3]) == (">=", "1"):
            message = "must not be empty"
        else:
            message = f"must have {'at least' if length[2] == '>=' else 'at most'} {length[3]} {noun}"
    elif _INFINITE.match(message):
        message = "must be a finite number"
    elif message.startswith("Invalid RFC3339 encoded date"):
        message = "must be a calendar date like 2023-09-20"
    elif message.startswith("Invalid enum value"):
        allowed = ALLOWED.get(path.rsplit(".", 1)[-1].split("[")[0], ())
        message = f"{message[len('Invalid enum value '):]} is not one of: {', '.join(allowed)}"
    if parts["key"] is not None:
        message = f"key {message}"
    return path or "body", message


def check_development(data: Mapping[str, Any], is_registered: Callable[[str], bool]) -> dict[str, Any]:
    """Validates a new development; returns the payload of its ``Recorded`` event
    (the id, if one was given, under ``id``)."""
    details = convert(data, DevelopmentDetails)
    payload = msgspec.to_builtins(details)
    errors: dict[str, list[str]] = {}
    _check_fields(payload, errors)
    _check_actors(payload, is_registered, errors)
    if errors:
        raise InvalidInput(errors)
    return payload


def check_changes(
    current: Mapping[str, Any], changes: Mapping[str, Any], is_registered: Callable[[str], bool]
) -> dict[str, Any]:
    """Validates a correction: the development as it would stand after it must pass every
    rule. Returns only the fields that really change (dates with their bounds)."""
    if not isinstance(changes, Mapping) or not changes:
        raise InvalidInput.of("changes", "name at least one field to correct")
    for field in ("id", "sources"):
        if field in changes:
            message = "is fixed" if field == "id" else "cannot be corrected; add sources instead"
            raise InvalidInput.of(f"changes.{field}", message)
    stated = {k: v for k, v in current.items() if k in DevelopmentDetails.__struct_fields__}
    try:
        merged = check_development({**stated, **changes}, is_registered)
    except InvalidInput as error:
        raise InvalidInput({f"changes.{k}": v for k, v in error.errors.items()}) from None
    changed = {k: merged.get(k) for k in changes if not same(merged.get(k), current.get(k))}
    if "when" in changed:
        changed.update({k: merged[k] for k in ("earliest", "latest", "precision", "qualified")})
    if not changed:
        raise InvalidInput.of("changes", "the correction changes nothing")
    return changed


def same(a: Any, b: Any) -> bool:
    """Whether two plain-data values would be recorded as the same JSON (``True`` is not ``1``)."""
    # Python's == holds 1 == 1.0 == True, also inside lists and dicts, so a correction of
    # an effect from 1 to true passed for "no change". Comparing JSON encodings tells bool
    # from number, and also 1 from 1.0: JSON itself has one number type, but the record
    # keeps the difference (msgspec decodes 1.0 as a float, and it is shown as 1.0), so a
    # correction from 1 to 1.0 changes what is stored and is not refused as changing
    # nothing. Keys are sorted, so the order of a mapping's keys does not count.
    return msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted")


def check_sources(sources: Any, field: str = "sources") -> list[dict[str, Any]]:
    """Validates further sources for a development (a list of them, else refused)."""
    checked = msgspec.to_builtins(convert(sources, list[Source], field))
    errors: dict[str, list[str]] = {}
    for i, source in enumerate(checked):
        _check_source(source, f"{field}[{i}]", errors)
    if errors:
        raise InvalidInput(errors)
    return checked


def check_source(source: Any, field: str = "source") -> dict[str, Any]:
    """Validates one further source for a development."""
    checked = msgspec.to_builtins(convert(source, Source, field))
    errors: dict[str, list[str]] = {}
    _check_source(checked, field, errors)
    if errors:
        raise InvalidInput(errors)
    return checked


def check_actor(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validates an actor's details; returns the payload of its ``Registered`` event."""
    payload = msgspec.to_builtins(convert(data, ActorDetails))
    errors: dict[str, list[str]] = {}
    _check_text(payload, ("name", "description"), "", errors)
    for i in _repeats(payload["aliases"]):
        errors.setdefault(f"aliases[{i}]", []).append(f"{payload['aliases'][i]!r} is already listed")
    if errors:
        raise InvalidInput(errors)
    return payload


def check_arguments(command: str, args: Mapping[str, Any], arguments: Iterable[str]) -> None:
    """A command takes only its own arguments: a misspelt one is refused, not ignored (a
    retraction with ``superseeded_by`` would be stored without its replacement)."""
    unknown = sorted(set(args) - set(arguments), key=str)
    if any(_SURROGATE.search(str(key)) for key in unknown):
        raise InvalidInput.of("body", "has a field name with an unpaired surrogate")
    if unknown:
        raise InvalidInput({str(key): [f"is not an argument of {command}"] for key in unknown})


def check_version(version: object) -> int | None:
    """The stream version a write expects, if it names one: a whole number. A version no
    stream has is stale, not invalid; but ``"1"`` is not version 1, nor is ``true``."""
    if version is None or type(version) is int:
        return version
    raise InvalidInput.of("expected_version", "must be a stream version: a whole number")


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput.of("reason", "is required: say why")
    if len(reason) > 2000 or not re.fullmatch(_CLEAN, reason):
        raise InvalidInput.of("reason", "must be at most 2000 characters of clean text")
    return reason


def _check_fields(payload: dict[str, Any], errors: dict[str, list[str]]) -> None:
    _check_text(payload, ("title",), "", errors)
    try:
        when = parse_when(payload["when"])
    except InvalidInput as error:
        errors.update(error.errors)
    else:
        payload.update(earliest=when.earliest, latest=when.latest, precision=when.precision, qualified=when.qualified)
    for i, source in enumerate(payload["sources"]):
        _check_source(source, f"sources[{i}]", errors)
    for i in _repeats((part["actor"], part["role"]) for part in payload["actors"]):
        part = payload["actors"][i]
        errors.setdefault(f"actors[{i}]", []).append(f"{part['actor']} is already listed as {part['role']}")
    for i in _repeats(payload.get("tags", ())):
        errors.setdefault(f"tags[{i}]", []).append(f"{payload['tags'][i]!r} is already listed")
    for i in _repeats((link["type"], link["development"]) for link in payload.get("links", ())):
        errors.setdefault(f"links[{i}]", []).append("is already listed")
    first_set: dict[tuple[str, str], int] = {}
    for i, change in enumerate(payload.get("effects", ())):
        key = (change["actor"], change["attribute"])
        if key in first_set:  # two values for one attribute: which would hold from the date on?
            errors.setdefault(f"effects[{i}]", []).append(
                f"{key[1]} of {key[0]} is already set by effects[{first_set[key]}]; give it one value"
            )
        first_set.setdefault(key, i)
    if payload.get("id") in {link["development"] for link in payload.get("links", ())}:
        errors.setdefault("links", []).append("a development cannot link to itself")


def _repeats(items: Iterable[Any]) -> Iterator[int]:
    """The positions of the items listed before: a list in the record states each item once."""
    listed: set[Any] = set()
    for i, item in enumerate(items):
        if item in listed:
            yield i
        listed.add(item)


def _check_source(source: dict[str, Any], where: str, errors: dict[str, list[str]]) -> None:
    if not (source.get("citation") or "").strip() and not source.get("url"):
        errors.setdefault(where, []).append("needs a citation or a url")
    if source.get("url") and not source.get("retrieved"):
        errors.setdefault(f"{where}.retrieved", []).append("is required with a url: the day it was read")
    if source.get("published"):
        try:
            parse_when(source["published"])
        except InvalidInput as error:
            errors.setdefault(f"{where}.published", []).extend(error.errors["when"])


def _check_actors(payload: dict[str, Any], is_registered: Callable[[str], bool], errors: dict[str, list[str]]) -> None:
    for group in ("actors", "effects"):
        for i, item in enumerate(payload.get(group, ())):
            if not is_registered(item["actor"]):
                errors.setdefault(f"{group}[{i}].actor", []).append(f"{item['actor']!r} is not a registered actor")


def _check_text(payload: dict[str, Any], fields: Iterable[str], prefix: str, errors: dict[str, list[str]]) -> None:
    for field in fields:
        value = payload.get(field)
        if isinstance(value, str) and value and not value.strip():
            errors.setdefault(prefix + field, []).append("must not be blank")

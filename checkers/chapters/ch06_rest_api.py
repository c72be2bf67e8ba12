"""Checks for chapter 06: REST API (marshmallow schemas, problem details, page links, the events resource, ETags).

Schemas are loaded and dumped in the learner's process and their results or `ValidationError` messages come back as
data. Everything else goes through the learner's own `create_app()` on the check's empty database (SQLite, or a
PostgreSQL schema), and is judged by what a client sees: status, headers, JSON, and the rows the database holds.
"""
from __future__ import annotations

from http import HTTPStatus
from types import SimpleNamespace as State
from urllib.parse import parse_qs, urlsplit

import flask_smorest  # noqa: F401  (imported before the check server forks: checks start warm)
import marshmallow  # noqa: F401
from werkzeug.exceptions import default_exceptions

from ..engine.judge import show, strictly_equal
from ..engine.learner import probe
from ..notebook.api import Bug, Chapter, Correct
from . import dbkit
from .kit import app_from_factory

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "REST API")
chapter.warm_up(dbkit.warm_up)


@chapter.warm_up
def _warm_up_api() -> None:
    """Run flask-smorest's usual paths once in the check server (a document, a validated request, an answer), so that
    each forked check skips their first-use costs."""
    from flask import Flask
    from flask.views import MethodView

    class ItemSchema(marshmallow.Schema):
        id = marshmallow.fields.Integer(dump_only=True)
        name = marshmallow.fields.String(required=True, validate=marshmallow.validate.Length(min=1, max=9))

    class Query(marshmallow.Schema):
        page = marshmallow.fields.Integer(load_default=1, validate=marshmallow.validate.Range(min=1))

    bp = flask_smorest.Blueprint("items", __name__)

    @bp.route("/")
    class Items(MethodView):
        @bp.arguments(Query, location="query")
        @bp.response(200, ItemSchema(many=True))
        def get(self, args):
            return [{"id": args["page"], "name": "a"}]

        @bp.arguments(ItemSchema)
        @bp.response(201, ItemSchema)
        @bp.alt_response(409, response="CONFLICT")
        def post(self, data):
            return {"id": 1, **data}, 201, {"ETag": '"1"'}

    app = Flask("warm-up")
    app.config.update(API_TITLE="warm-up", API_VERSION="v1", OPENAPI_VERSION="3.0.3", OPENAPI_URL_PREFIX="/")
    flask_smorest.Api(app).register_blueprint(bp, url_prefix="/items")
    client = app.test_client()
    client.get("/items/?page=2")
    client.post("/items/", json={"name": "b"})
    client.post("/items/", json={"name": ""}, headers={"If-Match": '"1"'})
    client.get("/openapi.json")

PREFIX, PROBLEM, MAX_INT, LIMIT = "/api/v1", "application/problem+json", 2**31 - 1, 10
VENUES, EVENTS, BOOKINGS = "venues", "events", "bookings"
SORTS = ("id", "name", "seats_left")
FIELDS = ("capacity", "id", "name", "seats_left", "venue_id")


def _missing(t) -> int:
    return t.rng.randrange(10**6, 10**7)


def _api(t, testing: bool = True) -> State:
    """The learner's app from `create_app()` on the check's database, its tables created; with a client."""
    app = app_from_factory(t, {"TESTING": testing, "SQLALCHEMY_DATABASE_URI": t.database_url(),
                               "SQLALCHEMY_ENGINE_OPTIONS": {}, "MAX_TICKETS_PER_ORDER": LIMIT})
    dbkit.create_tables(t, dbkit.learner_db(t))
    return State(app=app, client=t.client(app))


def _venue(t, city: str | None = None) -> int:
    return dbkit.insert(t, VENUES, {"name": t.word("Hall ").title() + f" {t.rng.randrange(10**6)}",
                                    "city": city or t.word().title(), "capacity": t.rng.randrange(100, 5000)})[0]


def _event(t, **fields) -> dict:
    """An event committed through the check's own connection (version 1); the row, with its id."""
    capacity = fields.pop("capacity", t.rng.randrange(20, 90))
    row = {"name": t.word("Gig ").title(), "capacity": capacity, "seats_left": capacity, "venue_id": None,
           "version": 1, **fields}
    return {**row, "id": dbkit.insert(t, EVENTS, row)[0]}


def _shown(row: dict) -> dict:
    return {name: row[name] for name in FIELDS}


# --- exercise 1: schemas ---------------------------------------------------------------------------------

ex1 = chapter.exercise(
    "Schemas for events",
    hints=[
        "A schema is a class of fields: `name = fields.String(required=True, validate=...)`. `dump_only=True` keeps a "
        "field out of what `load()` accepts; `allow_none=True` lets it be `null`; `strict=True` on `fields.Integer` "
        "refuses `\"5\"` and `5.0`. A query string is text, so `EventListArgs` leaves `strict` off.",
        "`validate=` takes one validator or a list: `[validate.Length(min=1, max=200), validate.Regexp(r\"\\s*\\S\")]`, "
        "`validate.Range(min=1, max=MAX_INT)`, `validate.OneOf([...])`. `sort` has `load_default=\"id\"` and is one of "
        "`SORTS` or the same with a leading `-`.",
        "`EventSchema`: `id = fields.Integer(dump_only=True)`, `name = fields.String()`, `capacity = fields.Integer()`, "
        "`seats_left = fields.Integer(dump_only=True)`, `venue_id = fields.Integer(allow_none=True)`. `EventInSchema`: "
        "`name` as above with `required=True`; `capacity = fields.Integer(required=True, strict=True, "
        "validate=validate.Range(min=1, max=MAX_INT))`; `venue_id = fields.Integer(strict=True, allow_none=True, "
        "validate=validate.Range(min=1, max=MAX_INT))`. `EventListArgs`: `venue_id = fields.Integer(validate="
        "validate.Range(min=1, max=MAX_INT))` and `sort = fields.String(load_default=\"id\", validate=validate.OneOf("
        "[*SORTS, *(f\"-{name}\" for name in SORTS)]))`.",
    ],
)
ex1.defines("tickethub.events.schemas", classes=["EventSchema", "EventInSchema", "EventListArgs"])


def _load(t, schema, data, what: str, **options):
    """`schema.load(data)`: ("ok", the result) or ("refused", {field: messages}); the learner's other errors escape."""
    call = t.attempt(schema.load, data, **options)
    if call.returned:
        return "ok", call.value
    if not call.error.isa("ValidationError"):
        raise call.error
    messages = t.get(call.error.remote, "messages")
    t.require(isinstance(messages, dict), f"{what}: a `ValidationError` whose `messages` name the fields",
              f"`messages` is {show(messages)}", "Do you raise errors through marshmallow's validators, per field?")
    return "refused", messages


def _refuses(t, schema, data, fields: set, what: str, hint: str, **options) -> None:
    kind, found = _load(t, schema, data, what, **options)
    t.require(kind == "refused" and set(found) == fields,
              f"`{what}.load({show(data, 90)})` refused, naming {', '.join(f'`{f}`' for f in sorted(fields))} only",
              lambda: f"it returned {show(found, 100)}" if kind == "ok" else f"it named {show(sorted(found))}", hint)


NAME_HINT = "Is `name` `fields.String(required=True, validate=[validate.Length(min=1, max=200), validate.Regexp(r\"\\s*\\S\")])`?"
CAPACITY_HINT = "Is `capacity` `fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_INT))`? " \
    "Without `strict=True`, `\"5\"` and `5.0` pass as 5."
VENUE_HINT = "Is `venue_id` `fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_INT))`?"
UNKNOWN_HINT = "Does `EventInSchema` declare only `name`, `capacity` and `venue_id`, and keep marshmallow's default " \
    "`unknown = RAISE`? A field a client may not set must not be accepted."


@ex1.step("`EventInSchema().load()` returns a valid event as sent: name, capacity (1 to `MAX_INT`), venue id or `null`")
def _valid_events(t, names):
    schema = names.EventInSchema()
    cases = [{"name": t.word().title(), "capacity": t.rng.randrange(2, 5000), "venue_id": t.rng.randrange(1, 10**6)},
             {"name": "x" * 200, "capacity": 1, "venue_id": None},
             {"name": " " + t.word().title(), "capacity": MAX_INT},
             {"name": t.word(), "capacity": t.rng.randrange(2, 90), "venue_id": MAX_INT},
             {"name": t.rng.choice("QXZ"), "capacity": t.rng.randrange(2, 90), "venue_id": 1}]
    for data in cases:
        kind, found = _load(t, schema, data, "EventInSchema")
        t.require(kind == "ok" and strictly_equal(found, data), f"`EventInSchema().load({show(data, 90)})` returns it",
                  lambda: f"it refused: {show(found, 120)}" if kind == "refused" else f"it returned {show(found, 120)}",
                  NAME_HINT if "name" in (found if kind == "refused" else {}) else
                  CAPACITY_HINT if "capacity" in (found if kind == "refused" else {}) else VENUE_HINT)
    return State(names=names, schema=schema)


@ex1.step("every bad field gets its own message: name, capacity, venue id, and fields a client may not send")
def _invalid_events(t, s):
    good = {"name": t.word().title(), "capacity": t.rng.randrange(2, 90)}
    cases = [({}, {"name", "capacity"}, NAME_HINT)]
    cases += [({**good, "name": bad}, {"name"}, NAME_HINT) for bad in ("", "   ", "x" * 201, 7, None)]
    cases += [({**good, "capacity": bad}, {"capacity"}, CAPACITY_HINT)
              for bad in ("5", 5.0, True, 0, -3, MAX_INT + 1, None)]
    cases += [({**good, "venue_id": bad}, {"venue_id"}, VENUE_HINT) for bad in ("3", 0, MAX_INT + 1, True, 2.0)]
    cases += [({**good, extra: 3}, {extra}, UNKNOWN_HINT) for extra in ("id", "seats_left", "capcity")]
    cases += [({"name": "", "capacity": "many", "venue_id": "x"}, {"name", "capacity", "venue_id"}, NAME_HINT)]
    for data, fields, hint in cases:
        _refuses(t, s.schema, data, fields, "EventInSchema()", hint)
    return s


@ex1.step("with `partial=True` (a `PATCH`) nothing is required, and whatever is sent is still checked")
def _partial(t, s):
    name = t.word().title()
    for data in ({}, {"name": name}, {"venue_id": None}):
        kind, found = _load(t, s.schema, data, "EventInSchema", partial=True)
        t.require(kind == "ok" and strictly_equal(found, data), f"`load({show(data)}, partial=True)` returns it",
                  lambda: show(found), "Do you mark fields `required=True` (rather than checking in a validator), so "
                  "that `partial=True` can lift it?")
    for data, field, hint in (({"capacity": 0}, "capacity", CAPACITY_HINT), ({"name": "  "}, "name", NAME_HINT),
                              ({"seats_left": 1}, "seats_left", UNKNOWN_HINT)):
        _refuses(t, s.schema, data, {field}, "EventInSchema()", hint, partial=True)
    return s


@ex1.step("`EventSchema().dump()` gives exactly `id`, `name`, `capacity`, `seats_left` and `venue_id`; the first and "
          "`seats_left` are `dump_only`")
def _dump(t, s):
    schema = s.names.EventSchema()
    capacity = t.rng.randrange(20, 90)
    event = {"id": t.rng.randrange(1, 10**6), "name": t.word().title(), "capacity": capacity,
             "seats_left": capacity - t.rng.randrange(1, 10), "venue_id": t.rng.choice([None, t.rng.randrange(1, 99)]),
             "version": 3, "bookings": []}
    dumped = t.attempt(schema.dump, event)
    wanted = _shown(event)
    t.require(dumped.returned and strictly_equal(dumped.value, wanted), f"`EventSchema().dump(...)` gives `{wanted}`",
              dumped.seen(), "Does `EventSchema` declare exactly those five fields (no `version`, no `bookings`)?")
    declared = t.get(schema, "fields")
    venue = declared.get("venue_id") if isinstance(declared, dict) else None
    t.require(venue is not None and t.get(venue, "allow_none") is True, "`venue_id` declared `allow_none=True`: the OpenAPI document then "
              "says an event's venue may be `null`", "it is not", "An event without a venue is dumped with `\"venue_id\": "
              "null`; without `allow_none=True`, the document promises a number, and clients (and schemathesis) trust it.")
    for field in ("id", "seats_left"):
        _refuses(t, schema, {"name": "A", "capacity": 3, field: 4}, {field}, "EventSchema()",
                 f"Is `{field}` declared with `dump_only=True`? A client must not choose it.")
    return s


@ex1.step("`EventListArgs` reads `venue_id` and `sort` from a query string (text), `sort` `id` unless given")
def _list_args(t, s):
    schema = s.names.EventListArgs()
    venue, page = t.rng.randrange(1, 10**6), t.rng.randrange(2, 9)
    cases = [({}, {"page": 1, "per_page": 20, "sort": "id"})]
    cases += [({"sort": sort}, {"page": 1, "per_page": 20, "sort": sort}) for sort in (*SORTS, *(f"-{s}" for s in SORTS))]
    cases += [({"venue_id": str(venue), "page": str(page), "sort": "-name"},
               {"venue_id": venue, "page": page, "per_page": 20, "sort": "-name"}),
              ({"venue_id": str(MAX_INT)}, {"venue_id": MAX_INT, "page": 1, "per_page": 20, "sort": "id"}),
              ({"venue_id": "1"}, {"venue_id": 1, "page": 1, "per_page": 20, "sort": "id"})]
    for data, wanted in cases:
        kind, found = _load(t, schema, data, "EventListArgs")
        t.require(kind == "ok" and strictly_equal(found, wanted), f"`EventListArgs().load({show(data)})` gives `{wanted}`",
                  lambda: f"it refused: {show(found)}" if kind == "refused" else f"it gave `{show(found)}`",
                  "Does `sort` have `load_default=\"id\"` and accept each of `SORTS`, also with a `-`? Is `venue_id` a "
                  "`fields.Integer` without `strict` (a query string is text)?")
    sort_hint = "Is `sort` validated with `validate.OneOf([...])`, listing exactly the names of `SORTS` and each with a `-`?"
    for bad in ("price", "name;DROP TABLE events", "--name", "-", "", "Name", "id "):
        _refuses(t, schema, {"sort": bad}, {"sort"}, "EventListArgs()", sort_hint)
    for bad in ("x", "0", "-4", str(MAX_INT + 1), "2.5"):
        _refuses(t, schema, {"venue_id": bad}, {"venue_id"}, "EventListArgs()",
                 "Is `venue_id` `fields.Integer(validate=validate.Range(min=1, max=MAX_INT))`?")


# --- exercise 2: problem details ---------------------------------------------------------------------------

ex2 = chapter.exercise(
    "Problem details",
    hints=[
        "`problem(error)` builds a plain dict from the `HTTPException`: `error.code` is the status, `error.name` its "
        "name, `error.description` the text Werkzeug (or `abort(..., description=...)`) gave it. What flask-smorest's "
        "`abort(..., message=..., errors=...)` and webargs add is in `error.data`, which may not exist.",
        "`data = getattr(error, \"data\", None) or {}`; `detail` is `data.get(\"message\", error.description)`; the "
        "errors are `data.get(\"errors\", data.get(\"messages\"))`, added only when there are some.",
        "`details = {\"type\": \"about:blank\", \"title\": error.name, \"status\": error.code, \"detail\": "
        "data.get(\"message\", error.description)}`, then `errors = data.get(\"errors\", data.get(\"messages\"))`, "
        "`if errors: details[\"errors\"] = errors`, and `return details`.",
    ],
)
ex2.defines("tickethub.errors", functions=["problem", "register_error_handlers"])
DETAIL_HINT = "Is `detail` the `message` of `error.data` when there is one (flask-smorest's `abort(404, message=...)`), " \
    "and `error.description` otherwise?"
ERRORS_HINT = "Do you add `errors` from `error.data` (`errors`, or else webargs' `messages`), and only when there are some?"


@probe
def _failing_route(app, path):
    """Add a route to `app` that raises, with a secret in its message (a bug, as far as the app knows)."""
    def fails():
        raise RuntimeError("check-secret-7f3a: database password hunter2")

    app.add_url_rule(path, "check_failure", fails)


def _titles(code: int) -> set:
    names = {HTTPStatus(code).phrase}
    if code in default_exceptions:
        names.add(default_exceptions[code]().name)
    return names


def _problem(t, reply, status: int, hint: str = DETAIL_HINT, errors: bool = False) -> dict:
    """The problem details of a reply, checked: status, media type, and `type`, `title`, `status`, `detail`."""
    body = t.json(reply, status, "problem details", "Does `problem()` return a dict? The given handler sends it.")
    t.require(reply.mimetype == PROBLEM, f"{reply.request} answers `Content-Type: {PROBLEM}`",
              f"`Content-Type: {reply.content_type}`", "Did you keep the given handler, which sets the media type?")
    t.require(isinstance(body, dict), f"{reply.request} answers a JSON object", show(body),
              "Does `problem()` return a `dict`?")
    keys = {"type", "title", "status", "detail"} | ({"errors"} if errors else set())
    t.require(set(body) == keys, f"{reply.request}'s problem has exactly {', '.join(f'`{k}`' for k in sorted(keys))}",
              lambda: f"it has {', '.join(f'`{k}`' for k in sorted(body))}: `{show(body, 160)}`",
              ERRORS_HINT if "errors" in set(body) ^ keys else "Are the keys `type`, `title`, `status` and `detail`?")
    t.require(body["type"] == "about:blank", "`\"type\": \"about:blank\"`", f"`type` is {show(body['type'])}",
              "Is `type` the text `about:blank`?")
    t.require(body["title"] in _titles(status), f"`title` the status's name, {show(sorted(_titles(status))[0])}",
              f"`title` is {show(body['title'])}", "Is `title` `error.name`?")
    t.require(type(body["status"]) is int and body["status"] == status, f"`\"status\": {status}`, the status code",
              f"`status` is {show(body['status'])}", "Is `status` `error.code` (an `int`)?")
    t.require(isinstance(body["detail"], str) and body["detail"].strip(), "a `detail` for a person",
              f"`detail` is {show(body['detail'])}", hint)
    return body


@ex2.step("a 404 from a view, a 405 and a 415 are problem details; each `detail` says what went wrong")
def _plain_errors(t, names):
    s = _api(t, testing=False)  # as in production: a bug reaches the error handler (the last step needs that)
    t.probe(_failing_route, s.app, f"{PREFIX}/check-failure")  # before the first request, as Flask wants
    missing = _missing(t)
    body = _problem(t, s.client.get(f"{PREFIX}/venues/{missing}"), 404)
    t.require(body["detail"] == f"There is no venue {missing}.", f"`detail` {f'There is no venue {missing}.'!r} "
              "(the view's `abort(404, message=...)`)", f"`detail` is {show(body['detail'])}", DETAIL_HINT)
    venue = _venue(t)
    reply = s.client.put(f"{PREFIX}/venues/{venue}", json={})
    body = _problem(t, reply, 405)
    t.require(body["detail"] == default_exceptions[405].description, "`detail` Werkzeug's description of a 405 (there "
              "is no `error.data`)", f"`detail` is {show(body['detail'])}", DETAIL_HINT)
    t.require("GET" in (reply.headers.get("Allow") or ""), "the 405 keeps its `Allow` header", show(reply.headers.get("Allow")),
              "Did you keep the given handler, which keeps the error's own response and headers?")
    body = _problem(t, s.client.post(f"{PREFIX}/venues/", data="name=Mill", content_type="text/plain"), 415)
    t.require("JSON" in body["detail"], "`detail` the description `api.py` gives the 415", f"`detail` is "
              f"{show(body['detail'])}", DETAIL_HINT)
    return s


@ex2.step("a 409 and a 400 (a body that is not JSON) too")
def _conflicts(t, s):
    venue = {"name": t.word("Hall ").title(), "city": t.word().title(), "capacity": t.rng.randrange(100, 900)}
    t.require(s.client.post(f"{PREFIX}/venues/", json=venue).status_code == 201, "a new venue: 201", "it was not created",
              "Does creating a venue still work? (the venues' files are given)")
    body = _problem(t, s.client.post(f"{PREFIX}/venues/", json=venue), 409)
    t.require(body["detail"] == "A venue with this name exists already.", "`detail` the view's message",
              f"`detail` is {show(body['detail'])}", DETAIL_HINT)
    body = _problem(t, s.client.post(f"{PREFIX}/venues/", data="{not json", content_type="application/json"), 400,
                    errors=True)
    t.require(isinstance(body["errors"], dict) and "json" in body["errors"], "`errors` from webargs, under `json`",
              f"`errors` is {show(body['errors'])}", ERRORS_HINT)
    return s


@ex2.step("a 422 names each bad field, by where it was sent: webargs' `messages` and a view's `errors=`")
def _unprocessable(t, s):
    body = _problem(t, s.client.post(f"{PREFIX}/venues/", json={"name": "", "capacity": "big"}), 422, errors=True)
    found = body["errors"]
    t.require(isinstance(found, dict) and set(found) == {"json"} and isinstance(found["json"], dict)
              and set(found["json"]) == {"name", "city", "capacity"}
              and all(isinstance(v, list) and v and all(isinstance(m, str) for m in v) for v in found["json"].values()),
              "`errors` `{\"json\": {\"name\": [...], \"city\": [...], \"capacity\": [...]}}`, webargs' messages",
              f"`errors` is {show(found, 160)}", ERRORS_HINT)
    page = t.rng.choice(["0", "-1", "x"])
    body = _problem(t, s.client.get(f"{PREFIX}/venues/", query_string={"page": page}), 422, errors=True)
    t.require(isinstance(body["errors"], dict) and set(body["errors"]) == {"query"}
              and set(body["errors"]["query"]) == {"page"}, "`errors` `{\"query\": {\"page\": [...]}}` for `?page=" + page + "`",
              f"`errors` is {show(body['errors'], 160)}", ERRORS_HINT)
    event = _event(t)
    seats = LIMIT + t.rng.randrange(1, 5)  # valid for the schema, refused by the service: the view passes `errors=`
    body = _problem(t, s.client.post(f"{PREFIX}/events/{event['id']}/bookings", json={"email": "ada@example.com",
                                                                                     "seats": seats}), 422, errors=True)
    t.require(body["errors"] == {"json": {"seats": [f"Book between 1 and {LIMIT} seats."]}},
              f"`errors` the view's `errors=`: `{{\"json\": {{\"seats\": [\"Book between 1 and {LIMIT} seats.\"]}}}}`",
              f"`errors` is {show(body['errors'], 160)}", "Do you take `error.data[\"errors\"]` first, and webargs' "
              "`messages` only when there are no `errors`?")
    return s


@ex2.step("a bug is a 500 in the same shape, and its `detail` reveals nothing of it; pages outside `/api/` stay HTML")
def _server_error(t, s):
    body = _problem(t, s.client.get(f"{PREFIX}/check-failure"), 500)
    t.require(not any(secret in body["detail"] for secret in ("check-secret", "hunter2", "RuntimeError")),
              "a `detail` that says nothing of the exception", f"`detail` is {show(body['detail'])}",
              "Did you keep the given `server_error` handler? A 500's detail must never show the exception.")
    reply = s.client.get(f"/{t.word()}")
    t.require(reply.status_code == 404 and reply.mimetype == "text/html", "`GET` of a page outside `/api/`: Flask's "
              "HTML 404", f"{reply.status_code}, `{reply.content_type}`", "Did you keep the given handlers' "
              "`if not request.path.startswith(\"/api/\")`?")


# --- exercise 3: page links ----------------------------------------------------------------------------

ex3 = chapter.exercise(
    "Links between pages",
    hints=[
        "`url_for(request.endpoint, **request.view_args, **query, page=n, per_page=per_page)` is the URL of page `n` of "
        "the list being answered: the same endpoint, the same path variables, and every keyword that is not part of the "
        "path in the query string. Write a small function `link(n)` around it.",
        "`self` is `link(page)`, `first` is `link(1)`, `last` is `link(max(pages, 1))`. Add `prev` when `page > 1` (the "
        "page before, but never past the last: `min(page - 1, last)`), and `next` when `page < pages`.",
        "`last = max(pages, 1)`; `links = {\"self\": link(page), \"first\": link(1), \"last\": link(last)}`; `if page > "
        "1: links[\"prev\"] = link(min(page - 1, last))`; `if page < pages: links[\"next\"] = link(page + 1)`; `return "
        "links`.",
    ],
)
ex3.defines("tickethub.links", functions=["page_links"])
LINK_HINT = "Do you build each link with `url_for(request.endpoint, **request.view_args, **query, page=..., " \
    "per_page=per_page)`, so that the path, the filters and the page size stay?"


def _parse(t, url, what: str) -> tuple:
    t.require(isinstance(url, str), f"`{what}` a URL", f"it is {show(url)}", LINK_HINT)
    parts = urlsplit(url)
    return parts.path, {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}


def _links(t, s, page: int, per_page: int, path: str = f"{PREFIX}/venues/", **query) -> dict:
    reply = s.client.get(path, query_string={**query, "page": page, "per_page": per_page})
    body = t.json(reply, 200, "a page", "Does the list still answer? (`pagination.py` and the venues are given)")
    links = body.get("links") if isinstance(body, dict) else None
    t.require(isinstance(links, dict), f"{reply.request} answers `links`, an object", f"`links` is {show(links)}",
              "Does `page_links` return a dict of links?")
    return links


def _expect_links(t, s, page: int, pages: int, per_page: int, path: str = f"{PREFIX}/venues/", **query) -> dict:
    links = _links(t, s, page, per_page, path, **query)
    last = max(pages, 1)
    wanted = {"self": page, "first": 1, "last": last}
    if page > 1:
        wanted["prev"] = min(page - 1, last)
    if page < pages:
        wanted["next"] = page + 1
    where = f"page {page} of {pages}"
    t.require(set(links) == set(wanted), f"{where}: the links {', '.join(f'`{k}`' for k in wanted)}",
              lambda: f"the links {', '.join(f'`{k}`' for k in links)}" if links else "no links",
              "Is there a `prev` only when `page > 1`, and a `next` only when `page < pages`? `self`, `first` and `last` "
              "are always there.")
    for name, number in wanted.items():
        seen = _parse(t, links[name], name)
        expected = (path, {**{k: str(v) for k, v in query.items()}, "page": str(number), "per_page": str(per_page)})
        t.require(seen == expected, f"{where}: `{name}` is page {number}, `{path}?"
                  + "&".join(f"{k}={v}" for k, v in expected[1].items()) + "`", f"`{links[name]}`",
                  "Is `last` page 1 when the list is empty, and `prev` the last page when `page` is past the end?"
                  if seen[1].get("page") != str(number) and name in ("last", "prev") else LINK_HINT)
    return links


@ex3.step("each page links to itself, the first and the last page, keeping the filter and `per_page`")
def _every_page(t, names):
    s = _api(t)
    s.city = t.word().title()
    s.venues = [_venue(t, s.city) if n % 3 else _venue(t) for n in range(t.rng.randrange(12, 18))]  # 8 or more in the city
    s.mine = [v for n, v in enumerate(s.venues) if n % 3]
    s.per_page = t.rng.randrange(2, 4)
    s.pages = -(-len(s.mine) // s.per_page)
    for page in (1, t.rng.randrange(2, s.pages), s.pages):
        _expect_links(t, s, page, s.pages, s.per_page, city=s.city)
    return s


@ex3.step("following `next` from `first` visits every venue of the city once, in order")
def _follow(t, s):
    url, seen, steps = _links(t, s, 1, s.per_page, city=s.city)["first"], [], 0
    while isinstance(url, str) and steps <= s.pages:
        body = t.json(s.client.get(url), 200, "a page", LINK_HINT)
        seen += [venue["id"] for venue in body.get("items", [])]
        url, steps = (body.get("links") or {}).get("next"), steps + 1
    t.require(seen == s.mine, f"the {len(s.mine)} venues of {s.city!r}, in id order, after {s.pages} pages",
              f"{len(seen)} venues after {steps} pages" + ("" if seen else ""), LINK_HINT)
    return s


@ex3.step("past the end, `prev` is the last page and there is no `next`; an empty list's first and last page is 1")
def _edges(t, s):
    for past in (1, t.rng.randrange(2, 5)):  # just past the end, where `prev` is `page - 1` too, and further
        _expect_links(t, s, s.pages + past, s.pages, s.per_page, city=s.city)
    _expect_links(t, s, 1, 0, s.per_page, city=t.word("Nowhere").title())
    _expect_links(t, s, 2, 0, s.per_page, city=t.word("Nowhere").title())
    _expect_links(t, s, 1, 1, len(s.mine), city=s.city)
    return s


@ex3.step("the links of an event's bookings keep the event's id in their path")
def _path_kept(t, s):
    event = _event(t)
    count = t.rng.randrange(3, 6)
    dbkit.insert(t, BOOKINGS, *({"event_id": event["id"], "email": f"{t.word()}{n}@example.com", "seats": 1}
                                for n in range(count)))
    _expect_links(t, s, 2, count, 1, f"{PREFIX}/events/{event['id']}/bookings")


# --- exercise 4: the events resource ----------------------------------------------------------------------

ex4 = chapter.exercise(
    "The events resource",
    requires=[ex1],
    hints=[
        "Each method gets its decorators: `@bp.arguments(Schema)` (add `location=\"query\"` for the query string) passes "
        "the loaded dict as the first argument after `self`; `@bp.response(status, Schema)` dumps what the method "
        "returns; `@bp.alt_response(412, response=\"PRECONDITION_FAILED\")` documents another answer. Copy "
        "`EventById.get`.",
        "`get`: `page, per_page = args.pop(\"page\"), args.pop(\"per_page\")`, then `return paginate(services."
        "events_query(**args), page, per_page, **args)`. `post`: call the service inside `try`/`except InvalidEvent as "
        "error: invalid(error)`, and `return event, 201, {\"Location\": url_for(\".EventById\", event_id=event.id), "
        "\"ETag\": conditional.etag(event.version)}`.",
        "`patch`: `@bp.arguments(EventPatchSchema(partial=True))`, `@bp.response(200, EventSchema)` and alt responses "
        "404, 412, 415; body: `conditional.check_if_match(find_event(event_id).version)`, the service in `try`, `return "
        "event, 200, {\"ETag\": conditional.etag(event.version)}`. `delete`: `@bp.response(204)`, alt responses 404 and "
        "412; body: the same `check_if_match` line, then `services.delete_event(event_id)`.",
    ],
)
ex4.defines("tickethub.events.resource", classes=["Events", "EventById"])
EX4_ERRORS = {
    "TypeError": "Does each method have its `@bp.arguments(...)` decorator? It passes the loaded data as the first "
                 "argument after `self`, before the URL's variables: `def patch(self, data, event_id)`.",
    "EventNotFound": "Do `patch` and `delete` look the event up with `find_event(event_id)` first? It answers 404 for "
                     "an unknown event; the service's `EventNotFound` reaching Flask is a 500.",
}
STATUS_HINT = "Is the status in `@bp.response(...)` (and in the returned tuple) the one the exercise asks for?"


def _row(t, event_id: int):
    return dbkit.one(t, EVENTS, event_id)


def _expect_event(t, reply, status: int, wanted: dict, what: str, hint: str) -> dict:
    body = t.json(reply, status, what, hint)
    t.require(isinstance(body, dict) and set(body) == set(FIELDS), f"{reply.request} answers the event's fields "
              f"{', '.join(f'`{k}`' for k in FIELDS)}", lambda: show(body, 160),
              "Is the response dumped with `EventSchema` (`@bp.response(..., EventSchema)`)?")
    t.require(all(strictly_equal(body[k], v) for k, v in wanted.items()), f"{reply.request} answers `{wanted}`",
              lambda: show(body, 160), hint)
    return body


@ex4.step("`POST /api/v1/events/` creates it: 201, the event, `Location` to it and its `ETag`", errors=EX4_ERRORS)
def _post(t, names):
    s = _api(t)
    s.venue = _venue(t)
    data = {"name": t.word("Gala ").title(), "capacity": t.rng.randrange(20, 900), "venue_id": s.venue}
    reply = s.client.post(f"{PREFIX}/events/", json=data)
    body = _expect_event(t, reply, 201, {**data, "seats_left": data["capacity"]}, "the new event",
                         "Does `post` call `services.create_event(data)` and return the event with 201?")
    t.require(type(body["id"]) is int, "an `int` id", show(body["id"]), "Is the response dumped with `EventSchema`?")
    location = reply.location
    t.require(location is not None and urlsplit(location).path == f"{PREFIX}/events/{body['id']}",
              f"`Location: {PREFIX}/events/{body['id']}`", f"`Location: {location}`",
              "Do you return `event, 201, {\"Location\": url_for(\".EventById\", event_id=event.id), ...}`?")
    t.require(reply.headers.get("ETag") == '"1"', "`ETag: \"1\"`, the new event's version", f"`ETag: "
              f"{reply.headers.get('ETag')}`", "Does the 201 carry `\"ETag\": conditional.etag(event.version)`?")
    row = _row(t, body["id"])
    t.require(row is not None and row["name"] == data["name"], "the event stored", show(row),
              "Does `post` call `services.create_event(data)`?")
    _expect_event(t, s.client.get(urlsplit(location).path), 200, body, "the event at `Location`", "Is `Location` the "
                  "new event's URL?")
    s.created = body
    return s


@ex4.step("invalid bodies are 422 (the schema's, and the service's for a venue that does not exist), other media 415; "
          "nothing is stored", errors=EX4_ERRORS)
def _post_refused(t, s):
    before = dbkit.count(t, EVENTS)
    good = {"name": t.word().title(), "capacity": t.rng.randrange(2, 90)}
    for data in ({}, {**good, "capacity": "5"}, {**good, "name": " "}, {**good, "seats_left": 0},
                 {**good, "venue_id": _missing(t)}, [good]):
        reply = s.client.post(f"{PREFIX}/events/", json=data)
        t.require(reply.status_code == 422, f"`POST {PREFIX}/events/` with `{show(data, 80)}` answers 422",
                  f"it answered {reply.status_code}{reply.excerpt()}", "Is `post` decorated with "
                  "`@bp.arguments(EventInSchema)`? And does an `InvalidEvent` from the service go to `invalid(error)`?")
    reply = s.client.post(f"{PREFIX}/events/", data="name=Gala&capacity=3", content_type="application/x-www-form-urlencoded")
    t.require(reply.status_code == 415, "a form body answers 415", f"it answered {reply.status_code}",
              "Did you keep `api.py`'s given `_json_bodies_only`?")
    after = dbkit.count(t, EVENTS)
    t.require(after == before, f"still {before} events", f"{after} events", "Does an invalid body reach the service?")
    return s


def _ids(t, s, query: dict) -> list:
    body = t.json(s.client.get(f"{PREFIX}/events/", query_string=query), 200, "a page of events",
                  "Is `get` decorated with `@bp.arguments(EventListArgs, location=\"query\")` and `@bp.response(200, "
                  "EventPageSchema)`?")
    items = body.get("items") if isinstance(body, dict) else None
    t.require(isinstance(items, list) and all(isinstance(e, dict) and set(e) == set(FIELDS) for e in items),
              "`items`: events with their five fields", lambda: show(body, 160), "Does `get` return `paginate(...)`?")
    return [e["id"] for e in items], body


@ex4.step("`GET /api/v1/events/` pages the events, filtered by `venue_id` and sorted by `sort` (ties by id)", errors=EX4_ERRORS)
def _list(t, s):
    other = _venue(t)
    shared = t.word("Same ").title()
    events = [s.created] + [_shown(_event(t, name=shared if n % 3 == 0 else t.word().title(),
                                          venue_id=t.rng.choice([s.venue, other, None]),
                                          seats_left=t.rng.randrange(0, 20))) for n in range(t.rng.randrange(6, 10))]
    hint = "Do you pass the loaded `sort` and `venue_id` to `services.events_query(**args)` (after taking out `page` and " \
        "`per_page`)?"
    for sort in (*SORTS, *(f"-{name}" for name in SORTS)):
        wanted = [e["id"] for e in _ordered(events, sort)]
        ids, _ = _ids(t, s, {"sort": sort, "per_page": 100})
        t.require(ids == wanted, f"`?sort={sort}` gives the events {wanted}", f"{ids}", hint)
    wanted = [e["id"] for e in _ordered([e for e in events if e["venue_id"] == s.venue], "-name")]
    ids, body = _ids(t, s, {"venue_id": s.venue, "sort": "-name"})
    t.require(ids == wanted and body.get("total") == len(wanted), f"`?venue_id={s.venue}&sort=-name` gives {wanted}",
              f"{ids}, `total` {show(body.get('total'))}", hint)
    per_page = t.rng.randrange(2, 4)
    wanted = [e["id"] for e in _ordered(events, "name")][per_page:2 * per_page]
    ids, body = _ids(t, s, {"sort": "name", "page": 2, "per_page": per_page})
    t.require(ids == wanted and body.get("page") == 2 and body.get("per_page") == per_page,
              f"page 2 of {per_page} by name: {wanted}", f"{ids}", "Do you pass `page` and `per_page` to `paginate`?")
    for query in ({"sort": "price"}, {"venue_id": "x"}, {"page": "0"}):
        reply = s.client.get(f"{PREFIX}/events/", query_string=query)
        t.require(reply.status_code == 422, f"{reply.request} answers 422", f"it answered {reply.status_code}",
                  "Is `get` decorated with `@bp.arguments(EventListArgs, location=\"query\")`?")
    s.events = events
    return s


def _ordered(events: list, sort: str) -> list:
    """The events in `sort`'s order, ties in id order (a reversed sort keeps ties in their order: it is stable)."""
    return sorted(sorted(events, key=lambda e: e["id"]), key=lambda e: e[sort.removeprefix("-")],
                  reverse=sort.startswith("-"))


@ex4.step("`PATCH /api/v1/events/<id>` changes the fields sent: 200, the event, its new `ETag`; 404, 422", errors=EX4_ERRORS)
def _patch(t, s):
    event = _shown(_event(t))
    name = t.word("New ").title()
    reply = s.client.patch(f"{PREFIX}/events/{event['id']}", json={"name": name})
    _expect_event(t, reply, 200, {**event, "name": name}, "the changed event", "Does `patch` call "
                  "`services.update_event(event_id, data)` and return the event?")
    t.require(reply.headers.get("ETag") == '"2"', "`ETag: \"2\"`: the version after the change",
              f"`ETag: {reply.headers.get('ETag')}`", "Does `patch` return `event, 200, {\"ETag\": "
              "conditional.etag(event.version)}`, after the change?")
    for data in ({"capacity": 0}, {"seats_left": 3}, {"capacity": "7"}):
        reply = s.client.patch(f"{PREFIX}/events/{event['id']}", json=data)
        t.require(reply.status_code == 422, f"{reply.request} with `{data}` answers 422", f"{reply.status_code}",
                  "Is `patch` decorated with `@bp.arguments(EventPatchSchema(partial=True))`?")
    booked = _event(t, capacity=10, seats_left=4)
    reply = s.client.patch(f"{PREFIX}/events/{booked['id']}", json={"capacity": 5})
    t.require(reply.status_code == 422, "a capacity below the 6 seats booked answers 422 (the service's `InvalidEvent`)",
              f"{reply.status_code}", "Does `InvalidEvent` from `update_event` go to `invalid(error)`?")
    row = _row(t, event["id"])
    t.require(row["name"] == name and row["capacity"] == event["capacity"], "the invalid edits changed nothing",
              show(row), "Does an invalid body reach the service?")
    reply = s.client.patch(f"{PREFIX}/events/{_missing(t)}", json={"name": name})
    t.require(reply.status_code == 404, f"{reply.request} of an unknown event answers 404", f"{reply.status_code}",
              "Does `patch` look the event up with `find_event(event_id)` first?")
    return s


@ex4.step("`DELETE /api/v1/events/<id>`: 204 with no body, and the event is gone; 404 for an unknown one; 405 for `PUT`", errors=EX4_ERRORS)
def _delete(t, s):
    event = _event(t)
    reply = s.client.delete(f"{PREFIX}/events/{event['id']}")
    t.require(reply.status_code == 204 and not reply.data, f"{reply.request} answers 204, with no body",
              f"{reply.status_code}{reply.excerpt()}", "Is `delete` decorated with `@bp.response(204)`, returning nothing?")
    t.require(_row(t, event["id"]) is None, "the event deleted", "it is still there",
              "Does `delete` call `services.delete_event(event_id)`?")
    reply = s.client.delete(f"{PREFIX}/events/{_missing(t)}")
    t.require(reply.status_code == 404, f"{reply.request} answers 404", f"{reply.status_code}",
              "Does `delete` call `find_event(event_id)`?")
    reply = s.client.put(f"{PREFIX}/events/{s.created['id']}", json={})
    allowed = {m.strip() for m in (reply.headers.get("Allow") or "").split(",")}
    t.require(reply.status_code == 405 and {"GET", "PATCH", "DELETE"} <= allowed, "`PUT` answers 405, `Allow` listing "
              "`GET`, `PATCH` and `DELETE`", f"{reply.status_code}, `Allow: {reply.headers.get('Allow')}`",
              "Are `patch` and `delete` methods of `EventById`?")
    return s


DOCUMENTED = {  # (path, method): (success status, its schema, error statuses, the request body's schema)
    ("/api/v1/events/", "get"): ("200", "EventPage", {"422"}, None),
    ("/api/v1/events/", "post"): ("201", "Event", {"415", "422"}, "EventIn"),
    ("/api/v1/events/{event_id}", "patch"): ("200", "Event", {"404", "412", "415", "422"}, "EventPatch"),
    ("/api/v1/events/{event_id}", "delete"): ("204", None, {"404", "412"}, None),
}


def _ref(item) -> str | None:
    ref = item.get("$ref") if isinstance(item, dict) else None
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


@ex4.step("the OpenAPI document describes each operation: its body, its answer's schema and every error it can give, as "
          "problem details", errors=EX4_ERRORS)
def _documented(t, s):
    spec = t.json(s.client.get(f"{PREFIX}/openapi.json"), 200, "the OpenAPI document", "Is `api.py` as given?")
    paths, components = spec.get("paths", {}), spec.get("components", {})
    for (path, method), (status, schema, errors, body) in DOCUMENTED.items():
        operation = paths.get(path, {}).get(method)
        where = f"`{method.upper()} {path}`"
        t.require(isinstance(operation, dict), f"{where} in the document", "it is not there",
                  f"Is `{method}` a method of its `MethodView`?")
        responses = operation.get("responses", {})
        t.require(status in responses, f"{where} documents its {status}", f"it documents {', '.join(sorted(responses))}",
                  STATUS_HINT)
        content = responses[status].get("content", {}).get("application/json", {}) if schema else {}
        t.require(schema is None or _ref(content.get("schema")) == schema, f"{where}'s {status} is an `{schema}`",
                  lambda: show(responses[status]), f"Is the method decorated with `@bp.response({status}, "
                  f"{schema}Schema)`?")
        missing = sorted(errors - set(responses))
        t.require(not missing, f"{where} documents {', '.join(sorted(errors))}", f"{', '.join(missing)} missing",
                  "Is each error the method can give declared with `@bp.alt_response(code, response=\"NAME\")` (422 comes "
                  "with `@bp.arguments`)?")
        for code in errors:
            target = components.get("responses", {}).get(_ref(responses[code]) or "", responses[code])
            media = target.get("content", {}) if isinstance(target, dict) else {}
            t.require(_ref(media.get(PROBLEM, {}).get("schema")) == "Problem", f"{where}'s {code} is problem details",
                      show(responses[code]), f"Did you write `response=\"{HTTPStatus(int(code)).name}\"`, the name of the "
                      "documented error response?")
        given = _ref(operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
        t.require(given == body, f"{where}'s body is " + (f"an `{body}`" if body else "none"), f"{show(given)}",
                  f"Is the method decorated with `@bp.arguments({body}Schema...)`?" if body else "Does it take a body?")
    names = {p.get("name") for p in paths.get("/api/v1/events/", {}).get("get", {}).get("parameters", [])
             if isinstance(p, dict) and p.get("in") == "query"}
    t.require({"page", "per_page", "venue_id", "sort"} <= names, "the list's query parameters `page`, `per_page`, "
              "`venue_id`, `sort` documented", f"{sorted(n for n in names if n)}",
              "Is `get` decorated with `@bp.arguments(EventListArgs, location=\"query\")`?")
    routes = t.probe(_routes, s.app)
    documented = {(path, method) for path, item in paths.items() for method in item if method != "parameters"}
    undocumented = sorted(f"`{m.upper()} {p}`" for p, m in routes if (p, m) not in documented)
    t.require(not undocumented, "every route under `/api/v1/` in the document", "not documented: " + ", ".join(undocumented),
              "Is every view a flask-smorest view, registered through `init_api()`?")


@probe
def _routes(app):
    """(path as OpenAPI writes it, method) of each API route of the app (not the document's own, nor Swagger UI's
    files)."""
    import re

    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and not rule.endpoint.startswith(("api-docs.", "swagger-ui.")):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            found |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return sorted(found)


# --- exercise 5: conditional requests ---------------------------------------------------------------------------

ex5 = chapter.exercise(
    "Conditional requests",
    requires=[ex4],
    hints=[
        "Werkzeug parses the headers: `request.if_none_match` and `request.if_match` are `ETags` objects. "
        "`ETags.contains_weak(tag)` compares weakly (`W/\"3\"` matches `3`), `ETags.contains(tag)` strongly; both say "
        "yes to `*`. The tag is the version as text, without quotes: `str(version)`.",
        "`fresh` is one line: `return request.if_none_match.contains_weak(str(version))`. An `ETags` object is false "
        "when the header is absent or empty, so `check_if_match` starts with `if request.if_match and ...`.",
        "`if request.if_match and not request.if_match.contains(str(version)): abort(412, description=\"The event has "
        "changed: load it again, then retry.\")`.",
    ],
)
ex5.defines("tickethub.conditional", functions=["fresh", "check_if_match", "etag"])
_contexts: list = []


@probe
def _push_request(app, method, headers):
    context = app.test_request_context(f"{PREFIX}/events/1", method=method, headers=headers)
    context.push()
    _contexts.append(context)


@probe
def _pop_request():
    _contexts.pop().pop()


def _in_request(t, s, function, version: int, method: str, header: str, value: str | None):
    t.probe(_push_request, s.app, method, {header: value} if value is not None else {})
    try:
        return t.attempt(function, version)
    finally:
        t.probe(_pop_request)


def _tags(t, version: int) -> dict:
    """Forms of the header, by what they are: each matches or not, strongly or weakly."""
    other = version + t.rng.randrange(1, 9)
    return {"current": f'"{version}"', "weak": f'W/"{version}"', "star": "*", "listed": f'"{other}", "{version}"',
            "stale": f'"{other}"', "longer": f'"{version}{version}"', "weak stale": f'W/"{other}"', "empty": "",
            "absent": None, "unquoted": f"{version}"}


@ex5.step("`fresh(version)` is `True` when `If-None-Match` names the version (weakly too) or is `*`, else `False`")
def _fresh(t, names):
    s = State(api=_api(t), names=names)
    s.app = s.api.app
    version = t.rng.randrange(2, 60)
    matches = {"current", "weak", "star", "listed", "unquoted"}
    for kind, value in _tags(t, version).items():
        call = _in_request(t, s, names.fresh, version, "GET", "If-None-Match", value)
        wanted = kind in matches
        t.require(call.returned and call.value is wanted, f"`fresh({version})` with `If-None-Match: {value}` ({kind}) "
                  f"returns `{wanted}`", call.seen(), "Do you compare weakly, `request.if_none_match.contains_weak("
                  "str(version))`? A weak tag or `*` matches; another version, or no header, does not.")
    return s


@ex5.step("`check_if_match(version)` aborts with 412 unless `If-Match` is absent, empty, `*` or names the version "
          "strongly (`W/\"3\"` does not)")
def _if_match(t, s):
    version = t.rng.randrange(2, 60)
    passes = {"current", "star", "listed", "empty", "absent", "unquoted"}
    for kind, value in _tags(t, version).items():
        call = _in_request(t, s, s.names.check_if_match, version, "PATCH", "If-Match", value)
        code = t.get(call.error.remote, "code") if call.error is not None and call.error.isa("HTTPException") else None
        if kind in passes:
            t.require(call.returned, f"`check_if_match({version})` with `If-Match: {value}` ({kind}) lets the write "
                      "through", call.seen() if code is None else f"it aborted with {code}",
                      "Do you abort only when `request.if_match` is there (an `ETags` object is false when the header is "
                      "absent or empty) and does not contain the version? `*` contains every version.")
        else:
            t.require(code == 412, f"`check_if_match({version})` with `If-Match: {value}` ({kind}) aborts with 412",
                      call.seen() if code is None else f"it aborted with {code}",
                      "Do you compare strongly, `request.if_match.contains(str(version))`, and `abort(412)` when it is "
                      "not there? A weak tag never matches a write.")
    return s


@ex5.step("`GET /api/v1/events/<id>` answers 304 with the `ETag` and no body when the client's copy is current")
def _not_modified(t, s):
    s.event = _event(t)
    url = f"{PREFIX}/events/{s.event['id']}"
    for value, status in (('"1"', 304), ('W/"1"', 304), ('"2"', 200), (None, 200)):
        reply = s.api.client.get(url, headers={"If-None-Match": value} if value else {})
        t.require(reply.status_code == status and reply.headers.get("ETag") == '"1"' and (status == 200) == bool(reply.data),
                  f"{reply.request} with `If-None-Match: {value}` answers {status}, `ETag: \"1\"`"
                  + (", no body" if status == 304 else ", the event"),
                  f"{reply.status_code}, `ETag: {reply.headers.get('ETag')}`{reply.excerpt()}",
                  "Does `fresh` return `True` only when the header names the version?")
    return s


@ex5.step("a `PATCH` or `DELETE` with a stale `If-Match` is 412 and changes nothing; a current one works")
def _preconditions(t, s):
    url = f"{PREFIX}/events/{s.event['id']}"
    name = t.word("Stale ").title()
    for value in ('"2"', 'W/"1"'):
        reply = s.api.client.patch(url, json={"name": name}, headers={"If-Match": value})
        t.require(reply.status_code == 412, f"{reply.request} with `If-Match: {value}` answers 412",
                  f"{reply.status_code}", "Does `check_if_match` abort with 412 for another version, or a weak tag?")
    row = _row(t, s.event["id"])
    t.require(row["name"] == s.event["name"] and row["version"] == 1, "the event unchanged, at version 1",
              show(row), "Does `patch` call `check_if_match` before it changes anything?")
    name = t.word("Fresh ").title()
    reply = s.api.client.patch(url, json={"name": name}, headers={"If-Match": '"1"'})
    t.require(reply.status_code == 200 and reply.headers.get("ETag") == '"2"', f"{reply.request} with `If-Match: \"1\"` "
              "answers 200, `ETag: \"2\"`", f"{reply.status_code}, `ETag: {reply.headers.get('ETag')}`",
              "Does `check_if_match` let the current version through?")
    reply = s.api.client.delete(url, headers={"If-Match": '"1"'})
    t.require(reply.status_code == 412 and _row(t, s.event["id"]) is not None, "a `DELETE` with the old `If-Match: \"1\"` "
              "answers 412, and the event stays", f"{reply.status_code}", "Does `delete` call `check_if_match`?")
    reply = s.api.client.delete(url, headers={"If-Match": "*"})
    t.require(reply.status_code == 204 and _row(t, s.event["id"]) is None, "a `DELETE` with `If-Match: *` answers 204",
              f"{reply.status_code}", "Does `*` match every version?")
    return s


@ex5.step("a booking changes the event's `ETag`, so a copy read before it is no longer current")
def _booking(t, s):
    event = _event(t)
    url = f"{PREFIX}/events/{event['id']}"
    reply = s.api.client.post(f"{url}/bookings", json={"email": f"{t.word()}@example.com", "seats": 1})
    t.require(reply.status_code == 201, "a booking: 201", f"{reply.status_code}", "Do bookings still work (given)?")
    reply = s.api.client.get(url, headers={"If-None-Match": '"1"'})
    t.require(reply.status_code == 200 and reply.headers.get("ETag") == '"2"', "`If-None-Match: \"1\"` after a booking "
              "answers 200 with `ETag: \"2\"`", f"{reply.status_code}, `ETag: {reply.headers.get('ETag')}`",
              "Does `fresh` compare with the version it is given?")


# --- exercise 6: a regression test for lost updates ------------------------------------------------------------

ex6 = chapter.exercise(
    "A regression test for lost updates",
    hints=[
        "Read tags from responses: `stale = client.get(url).headers[\"ETag\"]`. Another edit makes it stale: "
        "`client.patch(url, json={...})` with no `If-Match`. Then send `headers={\"If-Match\": stale}` with the "
        "`PATCH` the test is about, and look at `response.status_code`.",
        "\"Changes nothing\" is something to compare: keep `client.get(url).get_json()` just before the refused "
        "`PATCH`, and assert that a `GET` after it gives the same. For the second test, read the current tag with a "
        "`GET` just before the `PATCH`.",
        "`url = add_event(client)`, `stale = client.get(url).headers[\"ETag\"]`, `client.patch(url, json={\"capacity\": "
        "80})`, `before = client.get(url).get_json()`, `response = client.patch(url, json={\"name\": \"Lost Update\"}, "
        "headers={\"If-Match\": stale})`, `assert response.status_code == 412`, `assert client.get(url).get_json() == "
        "before`; and in the second test, `assert response.status_code == 200` after a `PATCH` with the current tag.",
    ],
)
PRECONDITION_TESTS, RESOURCE, CONDITIONAL = "tests/test_event_preconditions.py", "tickethub/events/resource.py", \
    "tickethub/conditional.py"
PATCH_CHECK = "        conditional.check_if_match(find_event(event_id).version)\n        try:\n"  # once: in `patch`
ABORT = "abort(412, description="
ex6.tests_catch(PRECONDITION_TESTS, hint=(
    "On the reference, a `PATCH` with the current `If-Match` answers 200 with a new `ETag`, and one with an older tag "
    "answers 412. Does your test read each tag from a response's `ETag` header, and make the tag stale with another "
    "`PATCH` first?"), accepts=[
    Correct("the ETags count from 0 (`\"0\"` for a new event, a tag is the version less one) and the 412 is worded "
            "otherwise", CONDITIONAL, "    return f'\"{version}\"'\n", "    return f'\"{version - 1}\"'\n",
            more=((CONDITIONAL, "contains_weak(str(version))", "contains_weak(str(version - 1))"),
                  (CONDITIONAL, "request.if_match.contains(str(version))", "request.if_match.contains(str(version - 1))"),
                  (CONDITIONAL, ABORT + "f\"The event has changed", ABORT + "f\"Stale copy; the event has changed")),
            hint="Does your test write a tag by hand (`'\"1\"'`) or expect a message word for word? An ETag is "
                 "opaque: read it from a response's `ETag` header. And assert the status, not the wording."),
], bugs=[
    Bug("`PATCH` ignores `If-Match`, so a stale edit is saved (200)", RESOURCE, PATCH_CHECK,
        "        find_event(event_id)\n        try:\n",
        hint="This `PATCH` saves an edit based on any tag. Does your test send a tag that is stale (another edit "
             "came after it was read), and assert the status of that `PATCH`?"),
    Bug("`PATCH` saves the edit first and checks `If-Match` afterwards: it answers 412, but the edit is saved", RESOURCE,
        PATCH_CHECK, "        version = find_event(event_id).version\n        try:\n",
        more=((RESOURCE, "            invalid(error)\n        return event, 200,",
               "            invalid(error)\n        conditional.check_if_match(version)\n        return event, 200,"),),
        hint="This API answers 412, and yet the stale edit is in the database. Does your test compare the event (a "
             "`GET`) before and after the refused `PATCH`?"),
    Bug("a stale `If-Match` is answered 409 Conflict instead of 412", CONDITIONAL, ABORT, "abort(409, description=",
        hint="Does your test assert the status exactly (`== 412`), not just that the `PATCH` failed? 409 says the edit "
             "clashes with the event's state, 428 that `If-Match` is missing; 412 alone says the tag is stale."),
    Bug("edits no longer change the event's version, its `ETag` (the model lost `version_id_col`), so a tag read "
        "before an edit still matches after it", "tickethub/models.py", '\n    __mapper_args__ = {"version_id_col": version}\n',
        "\n", hint="On this API an edit leaves the `ETag` as it was, and a tag read before it is saved over. Does your "
                   "test read the tag from the event before another edit, rather than make one up (`'\"999\"'`)?"),
    Bug("every `PATCH` with `If-Match` is refused with 412, the one with the current tag too", CONDITIONAL,
        "if request.if_match and not request.if_match.contains(str(version)):", "if request.if_match:",
        hint="This API refuses every conditional edit. Does a test send the *current* tag and assert that the "
             "`PATCH` succeeds (200)?"),
])


setup, reset = chapter.setup, chapter.reset

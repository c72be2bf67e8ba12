"""Checks for chapter 01: project structure (services, blueprints, JSON errors, the factory)."""
import inspect
import json
import types

from flask import Blueprint, Flask, abort, url_for
from werkzeug.http import HTTP_STATUS_CODES

from ..engine.judge import LearnerError, show
from ..engine.learner import probe
from ..notebook.api import Chapter

chapter = Chapter(__name__, "Project structure")

SERVICES = "tickethub/events/services.py"
HTTP_MODULES = ("flask", "werkzeug")


def _new_event(t) -> dict:
    return {"name": f"{t.word().title()} {t.word().title()}", "capacity": t.rng.randrange(20, 5000)}


@probe
def _http_names(module) -> list[str]:
    """The module's globals that come from Flask or Werkzeug, as "`name` (from `origin`)"."""
    found = []
    for name, value in vars(module).items():
        if isinstance(value, types.ModuleType):
            origin = value.__name__
        elif inspect.isclass(value) or inspect.isroutine(value):
            origin = getattr(value, "__module__", "") or ""
        else:  # an object: its real type (type() sees through proxies such as `request`)
            origin = type(value).__module__
        if not name.startswith("__") and isinstance(origin, str) and origin.split(".")[0] in HTTP_MODULES:
            found.append(f"`{name}` (from `{origin}`)")
    return sorted(found)


@probe
def _url_for(app, endpoint: str, **values) -> str:
    with app.test_request_context():
        return url_for(endpoint, **values)


# --- exercise 1: the event service -------------------------------------------------------

ex1 = chapter.exercise(
    "The event service",
    hints=[
        "Keep the events in a `dict` on the instance, keyed by id (`self._events = {}` in "
        "`__init__`), with a counter for the next id. `create_event` checks the two fields, "
        "collects what is wrong in an `errors` dict, and raises `InvalidEvent(errors)` if that "
        "dict is not empty.",
        "`data` may not be a dict at all: start with `name = data.get(\"name\") if "
        "isinstance(data, dict) else None` (and the same for `capacity`). A name is good when "
        "`isinstance(name, str) and name.strip()`; a capacity when `type(capacity) is int and "
        "capacity >= 1` (`isinstance(True, int)` is `True`, `type(True) is int` is not). "
        "`get_event` turns the `KeyError` of a missing id into `raise EventNotFound(event_id)`.",
        "`__init__` sets `self._events = {}` and `self._next_id = 1`. `list_events` returns "
        "`[self._events[key] for key in sorted(self._events)]`. `create_event` ends with "
        "`event = {\"id\": self._next_id, \"name\": name.strip(), \"capacity\": capacity}`, "
        "stores it with `self._events[event[\"id\"]] = event`, adds 1 to `self._next_id` and "
        "returns it. `ex1.solution()` shows the whole file.",
    ],
)
# loaded on its own: the package's __init__ imports routes.py, which exercise 2 writes later
ex1.defines("tickethub.events.services", path=SERVICES, classes=["EventService", "EventNotFound", "InvalidEvent"])


@ex1.step("`create_event(data)` stores an event and returns it as a `dict` with an `int` id")
def _create(t, names):
    service = names.EventService()
    data = _new_event(t)
    padded = {**data, "name": f"  {data['name']} "}
    event = t.returns(t.attempt(service.create_event, padded), dict, "the new event as a `dict`",
                      "Does `create_event` end with `return event`?")
    t.require(type(event.get("id")) is int, "the new event has an `int` id", f"the event is `{event}`",
              "Do you give each event an id from a counter, such as `self._next_id`?")
    t.require(event.get("name") == data["name"] and type(event.get("name")) is str,
              f"the event's name is `{data['name']!r}` (sent as `{padded['name']!r}`: without surrounding spaces)",
              f"the name is `{show(event.get('name'))}`", "Did you store `name.strip()`?")
    t.require(event.get("capacity") == data["capacity"] and type(event.get("capacity")) is int,
              f"the event's capacity is `{data['capacity']}`", f"the event is `{event}`",
              "Do you store the capacity the caller sent?")
    return names, service, [event]


@ex1.step("`get_event(id)` returns a stored event; `list_events()` lists them in id order")
def _get_and_list(t, state):
    names, service, events = state
    smallest = {"name": t.word().title(), "capacity": 1}  # the least the rules allow
    events += [service.create_event(_new_event(t)) for _ in range(t.rng.randrange(1, 3))]
    events.append(t.returns(t.attempt(service.create_event, smallest), dict, "the new event: a capacity of 1 is allowed",
                            "Is `capacity >= 1` allowed (an event for one person), or do you refuse 1?"))
    ids = [e.get("id") if isinstance(e, dict) else None for e in events]
    wanted_ids = list(range(1, len(events) + 1))
    t.require(ids == wanted_ids, f"the ids of {len(ids)} new events count up from 1: `{wanted_ids}`",
              f"the ids are `{ids}`", "Does the id counter start at 1 (`self._next_id = 1`), and do you add 1 "
              "after each event you store?")
    for event in events:
        got = t.attempt(service.get_event, event["id"])
        t.require(got.returned and got.value == event, f"{got.text} returns `{event}`", got.seen,
                  "Do you store each event under its id, and return it from `get_event`?")
    wanted = sorted(events, key=lambda e: e["id"])
    listed = t.attempt(service.list_events)
    t.require(listed.returned and type(listed.value) is list and listed.value == wanted,
              f"`list_events()` returns a `list` of the {len(events)} events, in id order: `{wanted}`",
              listed.seen, "Do you return a list (not a dict or its `.values()`) sorted by id?")
    return names, service, ids


@ex1.step("`get_event` of an unknown id raises `EventNotFound`")
def _not_found(t, state):
    names, service, ids = state
    for missing in (max(ids) + t.rng.randrange(1, 50), 0, -1):  # 0 and -1: never an id, whatever the store
        t.raises(t.attempt(service.get_event, missing), names.EventNotFound, "no event has that id",
                 "Did you catch the `KeyError` and `raise EventNotFound(event_id)`? The view will turn it "
                 "into a 404; returning `None` would hide the problem.")
    return names, service


def _invalid_cases(t):
    """(data, the fields it breaks): every rule of the exercise, at its boundaries."""
    name, capacity = f"{t.word().title()} {t.word().title()}", t.rng.randrange(20, 5000)
    return [
        ({"capacity": capacity}, {"name"}),
        ({"name": " " * t.rng.randrange(1, 4), "capacity": capacity}, {"name"}),
        ({"name": "", "capacity": capacity}, {"name"}),
        ({"name": t.rng.randrange(1, 99), "capacity": capacity}, {"name"}),
        ({"name": None, "capacity": capacity}, {"name"}),
        ({"name": name, "capacity": str(capacity)}, {"capacity"}),
        ({"name": name, "capacity": 0}, {"capacity"}),
        ({"name": name, "capacity": -capacity}, {"capacity"}),
        ({"name": name, "capacity": True}, {"capacity"}),
        ({"name": name, "capacity": capacity + 0.5}, {"capacity"}),
        ({"name": name, "capacity": float(capacity)}, {"capacity"}),
        ({"name": name}, {"capacity"}),
        ({}, {"name", "capacity"}),
        (None, {"name", "capacity"}),
        ([name, capacity], {"name", "capacity"}),
        ({"name": " ", "capacity": False}, {"name", "capacity"}),
    ]


@ex1.step("invalid data raises `InvalidEvent` whose `errors` names exactly the bad fields")
def _invalid(t, state):
    names, service = state
    before = len(service.list_events())
    for data, bad in _invalid_cases(t):
        call = t.attempt(service.create_event, data)
        fields = " and ".join(f"`{f}`" for f in sorted(bad))
        error = t.raises(call, names.InvalidEvent, f"{fields} {'breaks' if len(bad) == 1 else 'break'} a rule",
                         "Do you check that `name` is a non-blank string and that `capacity` is an `int` "
                         "(`type(capacity) is int`, so not `True`) of at least 1? Is `data` a `dict` at all?"
                         if call.returned else "Do you check the type of `data` and its values before using "
                         "them, and raise `InvalidEvent(errors)` for every broken rule?")
        errors = t.get(error.remote, "errors")
        t.require(type(errors) is dict and set(errors) == bad,
                  f"{call.text} raises `InvalidEvent` whose `errors` is a `dict` with the keys {fields} only",
                  f"`errors` is `{show(errors)}`", "Do you collect one entry per bad field "
                  "(`errors[\"name\"] = \"...\"`), and leave the fields that are fine out?")
    after = len(service.list_events())
    t.require(after == before, "invalid events are not stored", f"`list_events()` went from {before} to {after} events",
              "Do you raise `InvalidEvent` before storing anything?")
    return names


@ex1.step("two `EventService` objects do not share their events")
def _separate(t, names):
    first, second = names.EventService(), names.EventService()
    event = first.create_event(_new_event(t))
    listed = second.list_events()
    t.require(listed == [], "a new `EventService()` starts empty, even after another service stored an event",
              f"the second service lists `{show(listed)}`",
              "Do you keep the events on the instance (`self._events = {}` inside `__init__`), rather "
              "than in a class attribute or a module variable that every service shares?")
    t.raises(t.attempt(second.get_event, event["id"]), names.EventNotFound, "it holds no events",
             "Does each service keep its own events (and its own id counter) in `__init__`?")
    return names


@ex1.step("best practice: `tickethub/events/services.py` imports nothing from Flask or Werkzeug")
def _no_http(t, names):
    found = t.probe(_http_names, names.module)
    t.require(not found, "a service layer free of HTTP: no Flask or Werkzeug names in the module",
              "the module holds " + ", ".join(found),
              "Does the service use `abort`, `request` or `jsonify`? Raise `EventNotFound` or "
              "`InvalidEvent` instead, and let the views in `routes.py` translate them into HTTP.")


# --- exercise 2: the events blueprint ------------------------------------------------------

ex2 = chapter.exercise(
    "The events blueprint",
    hints=[
        "Each view is two or three lines: call `service()`, return what it gives, and turn its "
        "exceptions into HTTP. Routes are declared on the blueprint: `@bp.get(\"/\")`, "
        "`@bp.get(\"/<int:event_id>\")`, `@bp.post(\"/\")`.",
        "Wrap the service calls in `try`/`except`: `except EventNotFound: abort(404, "
        "description=...)` and `except InvalidEvent as invalid: return {\"errors\": "
        "invalid.errors}, 422`. A view may return three things: `return event, 201, "
        "{\"Location\": url_for(\".get_event\", event_id=event[\"id\"])}`.",
        "The create view: `event = service().create_event(request.get_json(silent=True))` inside "
        "`try`, `except InvalidEvent as invalid: return {\"errors\": invalid.errors}, 422`, and "
        "after the `try`, `return event, 201, {\"Location\": url_for(\".get_event\", "
        "event_id=event[\"id\"])}`. The list view is one line: `return service().list_events()`. "
        "`ex2.solution()` shows the whole file.",
    ],
    requires=[ex1],
)
ex2.defines("tickethub.events.routes", bp=Blueprint)


@probe
def _blueprint_app(bp, prefix: str):
    """A fresh app with only the learner's blueprint, at a prefix of the check's choosing."""
    app = Flask("check")
    app.config["TESTING"] = True
    app.register_blueprint(bp, url_prefix=prefix)
    return app


class _Events:
    """What exercise 2's steps share: the app, its service and client, and the prefix."""

    def __init__(self, t, app, service, services, prefix):
        self.t, self.app, self.service, self.services, self.prefix = t, app, service, services, prefix
        self.client = t.client(app)

    def open(self, method: str, url: str, **kwargs):
        """Send a request; a service exception escaping the view fails with a clear message."""
        try:
            return self.client.open(url, method, **kwargs)
        except LearnerError as error:
            kinds = [k for k in ("EventNotFound", "InvalidEvent") if error.isa(k)]
            if not kinds:
                raise
            self.t.fail(f"`{method} {url}` turns `{kinds[0]}` into an HTTP answer",
                        f"`{kinds[0]}` escaped from the view (a real client would get a 500 error page)",
                        "Do you catch `EventNotFound` (→ `abort(404, ...)`) and `InvalidEvent` "
                        "(→ `return {\"errors\": ...}, 422`) around the service calls?")


@ex2.step("registering `bp` (named `events`) gives the app its own `EventService` in `app.extensions[\"events\"]`")
def _registered(t, names):
    bp_name = t.get(names.bp, "name")
    t.require(bp_name == "events", "a `Blueprint` named `events` in `bp`", f"`bp` is named `{show(bp_name)}`",
              "Did you keep the line `bp = Blueprint(\"events\", __name__)`?")
    services = t.module("tickethub.events.services")
    prefix = f"/{t.word()}/{t.word()}"
    app = t.probe(_blueprint_app, names.bp, prefix)
    service = t.get(app, "extensions").get("events")
    t.require(t.isa(service, services.EventService),
              "`app.extensions[\"events\"]` holds an `EventService` once the blueprint is registered",
              f"it holds {show(service)}", "Did you keep the given `@bp.record_once` function `create_service`?")
    return _Events(t, app, service, services, prefix)


@ex2.step("`GET <prefix>/` lists the events the service holds")
def _list(t, ev):
    url = f"{ev.prefix}/"
    body = t.json(ev.open("GET", url), 200, "the list of events",
                  "Is there a route `@bp.get(\"/\")` that returns `service().list_events()`?")
    t.require(body == [], "`[]` before any event exists", f"`{show(body)}`",
              "Does the view return `service().list_events()` rather than data of its own?")
    ev.seeded = [ev.service.create_event(_new_event(t)) for _ in range(t.rng.randrange(2, 4))]
    body = t.json(ev.open("GET", url), 200, "the list of events")
    t.require(body == ev.seeded, f"the events stored in `app.extensions[\"events\"]`: `{ev.seeded}`",
              f"`{show(body, 300)}`", "Does the view return `service().list_events()`, so it shows what the service holds?")
    return ev


@ex2.step("`GET <prefix>/<id>` answers the event, or 404 when there is no such event")
def _get(t, ev):
    for event in ev.seeded:
        body = t.json(ev.open("GET", f"{ev.prefix}/{event['id']}"), 200, "the event as JSON",
                      "Is there a route `@bp.get(\"/<int:event_id>\")` that returns `service().get_event(event_id)`?")
        t.require(body == event, f"`{event}`", f"`{show(body)}`", "Does the view return `service().get_event(event_id)`?")
    for missing in (max(e["id"] for e in ev.seeded) + t.rng.randrange(1, 50), 0):
        reply = ev.open("GET", f"{ev.prefix}/{missing}")
        t.require(reply.status_code == 404, f"`GET {ev.prefix}/{missing}` answers 404 (no event has that id)",
                  f"it answered {reply.status_code}", "Do you catch `EventNotFound` and call `abort(404, description=...)`?")
    return ev


@ex2.step("`POST <prefix>/` answers 201 with the new event and its URL in `Location`")
def _create_view(t, ev):
    data, url = _new_event(t), f"{ev.prefix}/"
    reply = ev.open("POST", url, json=data)
    body = t.json(reply, 201, "the new event as JSON",
                  "Is there a route `@bp.post(\"/\")`, and does it return `event, 201, {...}`?")
    t.require(isinstance(body, dict) and type(body.get("id")) is int
              and body.get("name") == data["name"] and body.get("capacity") == data["capacity"],
              f"the new event, `{{\"id\": <int>, \"name\": {data['name']!r}, \"capacity\": {data['capacity']}}}`",
              f"`{show(body)}`", "Do you pass `request.get_json(silent=True)` to `service().create_event(...)` and "
              "return the event it gives back?")
    wanted = t.probe(_url_for, ev.app, "events.get_event", event_id=body["id"])
    t.require(reply.location in (wanted, "http://localhost" + wanted),
              f"the `Location` header is the new event's URL, `{wanted}` (the blueprint is registered at `{ev.prefix}`)",
              f"`Location: {reply.location}`" if reply.location else "no `Location` header",
              "Do you return `event, 201, {\"Location\": url_for(\".get_event\", event_id=event[\"id\"])}`? "
              "A URL written by hand breaks when the blueprint moves to another prefix.")
    stored = t.attempt(ev.service.get_event, body["id"])
    t.require(stored.returned and stored.value == body,
              f"the event created by `POST {url}` is in the app's service: `get_event({body['id']})` returns `{body}`",
              stored.seen, "Does the view store the event through `service().create_event(...)`, rather than "
              "keeping events of its own?")
    return ev


@ex2.step("`POST <prefix>/` with invalid data answers 422 with `{\"errors\": {...}}`")
def _invalid_view(t, ev):
    url, name, capacity = f"{ev.prefix}/", f"{t.word().title()} {t.word().title()}", t.rng.randrange(20, 5000)
    before = len(ev.service.list_events())
    for kwargs, field, what in (
        ({"json": {"name": name, "capacity": str(capacity)}}, "capacity", f"a capacity of `\"{capacity}\"`"),
        ({"json": {"capacity": capacity}}, "name", "no name"),
        ({"data": f"{name}, {capacity}", "content_type": "text/plain"}, "name", "a body that is not JSON"),
        ({"json": [name, capacity]}, "name", "a JSON list instead of an object"),
    ):
        body = t.json(ev.open("POST", url, **kwargs), 422, f"the errors for {what}",
                      "Do you catch `InvalidEvent` and `return {\"errors\": invalid.errors}, 422`? For a body "
                      "that is not JSON, do you read it with `request.get_json(silent=True)` and let the "
                      "service reject the `None`?")
        errors = body.get("errors") if isinstance(body, dict) else None
        t.require(isinstance(errors, dict) and field in errors,
                  f"a body `{{\"errors\": {{...}}}}` that names `{field}`, for {what}", f"`{show(body)}`",
                  "Do you return the exception's `errors` dict under the key `\"errors\"`?")
    after = len(ev.service.list_events())
    t.require(after == before, "invalid events are not stored", f"the service went from {before} to {after} events",
              "Does the view store events only through `service().create_event(...)`?")


# --- exercise 3: JSON errors ---------------------------------------------------------------

ERROR_CODES = (400, 403, 404, 409, 410)

ex3 = chapter.exercise(
    "JSON errors under `/api`",
    hints=[
        "Inside `register_error_handlers(app)`, decorate a function with "
        "`@app.errorhandler(HTTPException)`: it receives every HTTP error, with `error.code`, "
        "`error.name` and `error.description`. Check `request.path.startswith(\"/api/\")` first, "
        "and `return error` unchanged for other paths.",
        "Keep the error's own response, with its headers: `response = error.get_response()`, then "
        "`response.data = json.dumps({\"code\": error.code, \"error\": error.name, \"message\": "
        "error.description})`, `response.content_type = \"application/json\"` and `return response`. For "
        "unexpected exceptions add a second handler, `@app.errorhandler(InternalServerError)`, that answers a "
        "fixed message with 500: never `str(error)` or `error.original_exception`, which may hold secrets.",
        "The second handler: `@app.errorhandler(InternalServerError)` on a function that, for "
        "paths under `/api/`, answers `error.get_response()` with the body `{\"code\": 500, \"error\": "
        "\"Internal Server Error\", \"message\": \"Something went wrong on our side.\"}`, and otherwise "
        "`return error`. "
        "`ex3.solution()` shows the whole file.",
    ],
)
ex3.defines("tickethub.errors", functions=["register_error_handlers"])


@probe
def _errors_app(register, area: str, descriptions: dict, secret: str, propagate: bool):
    """A fresh app (TESTING off) with the learner's handlers and routes that fail on purpose.

    With `propagate`, an exception raised *by the learner's handler* reaches the check (and
    shows the learner's line) instead of becoming a 500 page.
    """
    app = Flask("check")
    if propagate:
        app.config["PROPAGATE_EXCEPTIONS"] = True
    register(app)

    @app.get(f"/api/{area}/fail/<int:code>")
    def fail(code):
        abort(code, description=descriptions[code])

    @app.get(f"/api/{area}/crash")
    def crash():
        raise RuntimeError(f"database password is {secret}")

    @app.get(f"/{area}/page")
    def page():
        return "<h1>A page</h1>"

    @app.get(f"/{area}/crash")
    def page_crash():
        raise RuntimeError(f"database password is {secret}")

    return app


class _Errors:
    """Exercise 3's random names, and a way to build its check app."""

    def __init__(self, t, register):
        self.t, self.register, self.area = t, register, t.word()
        self.secret = f"{t.word()}-{t.rng.randrange(10**6, 10**7)}"
        self.descriptions = {code: f"{t.word().title()} {t.word()} {t.word()} {t.rng.randrange(10, 99)}."
                             for code in ERROR_CODES}

    def client(self, propagate: bool = True):
        return self.t.client(self.t.probe(_errors_app, self.register, self.area, self.descriptions,
                                          self.secret, propagate))


def _error_body(t, reply, code: int, what: str, message: str | None = None) -> None:
    """Check a JSON error: its status, and the body `{"code", "error", "message"}`."""
    t.require(reply.status_code == code, f"{reply.request} answers {code}, with {what}",
              f"it answered {reply.status_code}", "Does your handler answer with the error's own status "
              "(`error.get_response()` keeps it)?")
    t.require(reply.is_json, f"{reply.request} answers {code} with {what}",
              f"it answered {code} with `Content-Type: {reply.content_type}`",
              "Did you register a handler with `@app.errorhandler(HTTPException)` inside "
              "`register_error_handlers(app)`, and does it return a `dict` for paths under `/api/`?")
    body = reply.get_json(silent=True)
    wanted = {"code": code, "error": HTTP_STATUS_CODES[code], **({"message": message} if message is not None else {})}
    ok = (isinstance(body, dict) and isinstance(body.get("message"), str)
          and all(body.get(k) == v and type(body.get(k)) is type(v) for k, v in wanted.items()))
    shape = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in wanted.items()) + (', "message": "..."' if message is None else "")
    t.require(ok, f"the body `{{{shape}}}`", f"`{show(body, 200)}`",
              "Does the body use `error.code` (an `int`), `error.name` and `error.description`, under "
              "the keys `code`, `error` and `message`?")


@ex3.step("`abort(code, description=...)` under `/api/` answers that status with a JSON body")
def _aborts(t, names):
    errors = _Errors(t, names.register_error_handlers)
    client = errors.client()
    for code in ERROR_CODES:  # every code, every time: a handler right for some codes only must fail
        _error_body(t, client.get(f"/api/{errors.area}/fail/{code}"), code,
                    f"a JSON error for `abort({code}, ...)`", errors.descriptions[code])
    return errors


@ex3.step("an unknown URL or a wrong method under `/api/` answers a JSON 404 or 405")
def _unknown(t, errors):
    client = errors.client()
    _error_body(t, client.get(f"/api/{t.word()}/{t.rng.randrange(1, 999)}"), 404, "a JSON 404 for a URL that matches no route")
    reply = client.post(f"/api/{errors.area}/crash")
    _error_body(t, reply, 405, "a JSON 405 for a method the route does not allow")
    allowed = {m.strip() for m in (reply.headers.get("Allow") or "").split(",") if m.strip()}
    t.require("GET" in allowed, "the 405 keeps its `Allow` header, which names the methods the URL accepts (`GET`)",
              f"`Allow: {reply.headers.get('Allow')}`" if reply.headers.get("Allow") else "no `Allow` header",
              "Do you answer `error.get_response()` with its body replaced? `return body, error.code` builds a new "
              "response and drops the error's headers.")
    return errors


@ex3.step("an unexpected exception under `/api/` answers a JSON 500 that reveals nothing of it")
def _crash(t, errors):
    reply = errors.client(propagate=False).get(f"/api/{errors.area}/crash")
    body = t.json(reply, 500, "a JSON error", "Is there a handler for `InternalServerError` (or for "
                  "`HTTPException`, which includes it) that answers JSON under `/api/`?")
    t.require(isinstance(body, dict) and body.get("code") == 500 and type(body.get("code")) is int
              and body.get("error") == "Internal Server Error" and isinstance(body.get("message"), str),
              '`{"code": 500, "error": "Internal Server Error", "message": "..."}`', f"`{show(body, 200)}`",
              "Does the 500 answer have the same keys as the other errors, with the error's own name?")
    t.require(errors.secret not in reply.text,
              "a 500 body that does not repeat the exception's message (it may hold secrets)",
              f"the body contains the exception's text: `{show(body, 200)}`",
              "Do you answer a fixed message, rather than `str(error)` or `error.original_exception`?")
    return errors


@ex3.step("outside `/api/`, errors keep Flask's HTML pages")
def _html(t, errors):
    client = errors.client()
    for url in (f"/{errors.area}/{t.word()}", f"/{errors.area}api/{t.word()}", "/api"):  # not under `/api/`
        reply = client.get(url)
        t.require(reply.status_code == 404 and not reply.is_json,
                  f"`GET {url}` answers 404 with Flask's HTML page (it is not part of the API)",
                  f"it answered {reply.status_code} with `Content-Type: {reply.content_type}`",
                  "Does your handler check `request.path.startswith(\"/api/\")`, and `return error` "
                  "unchanged for other paths?")
    reply = errors.client(propagate=False).get(f"/{errors.area}/crash")
    t.require(reply.status_code == 500 and not reply.is_json and errors.secret not in reply.text,
              f"`GET /{errors.area}/crash`, an unexpected exception outside `/api/`, answers Flask's HTML 500 page",
              f"it answered {reply.status_code} with `Content-Type: {reply.content_type}`",
              "Does your 500 handler, too, `return error` unchanged for paths outside `/api/`?")


# --- exercise 4: the application factory ---------------------------------------------------

ex4 = chapter.exercise(
    "The application factory",
    hints=[
        "The body of `create_app` does, in order: `app = Flask(__name__)`, set `SECRET_KEY`, "
        "apply `test_config` if it is not `None`, import the feature modules, register the three "
        "blueprints, register the error handlers, `return app`.",
        "`app.config.from_mapping(test_config)` applies the caller's settings. Register each "
        "blueprint with its prefix: `app.register_blueprint(events.bp, url_prefix=\"/api/events\")` "
        "(and `/api/venues` for venues; `warmup.bp` brings its own). Then "
        "`errors.register_error_handlers(app)`.",
        "After `app = Flask(__name__)` and `app.config.from_mapping(SECRET_KEY=\"dev\")`: "
        "`if test_config is not None: app.config.from_mapping(test_config)`, then "
        "`from . import errors, events, venues, warmup`, `app.register_blueprint(warmup.bp)`, "
        "`app.register_blueprint(venues.bp, url_prefix=\"/api/venues\")`, "
        "`app.register_blueprint(events.bp, url_prefix=\"/api/events\")`, "
        "`errors.register_error_handlers(app)` and `return app`.",
    ],
    requires=[ex2, ex3],
)
ex4.defines("tickethub", functions=["create_app"])


@probe
def _signature(function) -> dict:
    """The function's signature as text, and whether `test_config` defaults to `None`."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return {"text": "(...)", "test_config": False}
    parameter = signature.parameters.get("test_config")
    return {"text": str(signature), "test_config": parameter is not None and parameter.default is None}


@probe
def _routes(app) -> list:
    return [(rule.rule, rule.endpoint) for rule in app.url_map.iter_rules()]


@probe
def _global_apps(module) -> list[str]:
    return sorted(name for name, value in vars(module).items() if isinstance(value, Flask))


@ex4.step("`create_app` takes `test_config=None`")
def _signature_step(t, names):
    signature = t.probe(_signature, names.create_app)
    t.require(signature["test_config"], "a parameter `test_config` that defaults to `None`",
              f"the signature is `create_app{signature['text']}`", "Did you keep the line `def create_app(test_config=None):`?")
    return names


@ex4.step("each call returns a new Flask app, configured by `test_config`")
def _new_apps(t, names):
    key, value = f"CHECK_{t.word().upper()}", t.word()
    first = names.create_app({"TESTING": True, key: value})
    t.require(t.isa(first, Flask), "`create_app({...})` returns a Flask app", f"it returned {show(first)}",
              "Does `create_app` end with `return app`?")
    second = names.create_app()
    t.require(t.isa(second, Flask), "`create_app()`, with no argument, returns a Flask app",
              f"it returned {show(second)}", "Does `create_app` work when `test_config` is `None`?")
    t.require(first != second, "two calls return two different apps", "both calls returned the same app object",
              "Does `create_app` make a new `Flask(__name__)` on every call, rather than returning a global `app`?")
    got, testing = first.config.get(key), first.testing
    t.require(got == value and testing is True,
              f"`create_app({{\"TESTING\": True, \"{key}\": \"{value}\"}})` puts both settings in `app.config`",
              f"`app.config[\"{key}\"]` is {show(got)}, `app.testing` is {testing}",
              "Do you call `app.config.from_mapping(test_config)` when `test_config` is not `None`?")
    secret = second.config.get("SECRET_KEY")
    t.require(secret == "dev", "`create_app()` sets `SECRET_KEY` to `\"dev\"`", f"`SECRET_KEY` is {show(secret)}",
              "Do you call `app.config.from_mapping(SECRET_KEY=\"dev\")` right after creating the app?")
    mine = t.word()
    chosen = names.create_app({"SECRET_KEY": mine}).config.get("SECRET_KEY")
    t.require(chosen == mine, f"`create_app({{\"SECRET_KEY\": \"{mine}\"}})` keeps the caller's `SECRET_KEY`",
              f"`SECRET_KEY` is {show(chosen)}", "Do you apply `test_config` after the defaults, so the caller's "
              "settings win?")
    leaked = second.config.get(key)
    t.require(leaked is None, f"`{key}` given to one call does not appear in the app of another call",
              f"the other app has `{key}` = {show(leaked)}",
              "Do you apply `test_config` to the new app only (not to a shared config object)?")
    return names, first


@ex4.step("the `warmup`, `venues` and `events` blueprints are registered")
def _blueprints(t, state):
    names, app = state
    registered = sorted(t.get(app, "blueprints"))
    missing = [n for n in ("warmup", "venues", "events") if n not in registered]
    t.require(not missing, "the blueprints `warmup`, `venues` and `events` in `app.blueprints`",
              f"`app.blueprints` has {', '.join(f'`{n}`' for n in registered) or 'none'}",
              f"Did you call `app.register_blueprint({missing[0] if missing else ''}.bp, ...)` in `create_app`?")
    return state


@ex4.step("events routes live under `/api/events/`, venues routes under `/api/venues/`")
def _prefixes(t, state):
    names, app = state
    rules = t.probe(_routes, app)
    for feature in ("events", "venues"):
        prefix = f"/api/{feature}"
        found = sorted(rule for rule, endpoint in rules if endpoint.startswith(f"{feature}."))
        t.require(found and all(rule.startswith(prefix + "/") for rule in found),
                  f"every route of the `{feature}` blueprint under `{prefix}/`",
                  f"its routes are {', '.join(f'`{r}`' for r in found) or 'missing'}",
                  f"Did you register it with `app.register_blueprint({feature}.bp, url_prefix=\"{prefix}\")`?")
    event_id, venue_id = t.rng.randrange(1, 999), t.rng.randrange(1, 999)
    built = (t.probe(_url_for, app, "events.get_event", event_id=event_id),
             t.probe(_url_for, app, "venues.get_venue", venue_id=venue_id))
    wanted = (f"/api/events/{event_id}", f"/api/venues/{venue_id}")
    t.require(built == wanted, f"`url_for(\"events.get_event\", event_id={event_id})` gives `{wanted[0]}`, and "
              f"`url_for(\"venues.get_venue\", venue_id={venue_id})` gives `{wanted[1]}`",
              f"they give `{built[0]}` and `{built[1]}`", "Are the prefixes exactly `/api/events` and `/api/venues`?")
    return state


@ex4.step("end to end: `POST /api/events/`, then `GET /api/events/<id>`, with JSON errors")
def _end_to_end(t, state):
    names, app = state
    client = t.client(app)
    created = t.json(client.post("/api/events/", json=_new_event(t)), 201, "the new event",
                     "Is the `events` blueprint registered at `/api/events`?")
    t.require(isinstance(created, dict) and type(created.get("id")) is int,
              "the new event as a JSON object with an `int` id", f"`{show(created)}`",
              "Does the `create_event` view return the event that the service gives back?")
    body = t.json(client.get(f"/api/events/{created['id']}"), 200, "the event just created")
    t.require(body == created, f"`{created}`", f"`{show(body)}`", "Does the app keep the events it creates?")
    venues = t.json(client.get("/api/venues/"), 200, "the list of venues",
                    "Is the `venues` blueprint registered at `/api/venues`?")
    t.require(isinstance(venues, list) and venues, "a non-empty list of venues", f"`{show(venues)}`")
    missing = created["id"] + t.rng.randrange(1, 50)
    reply = client.get(f"/api/events/{missing}")
    body = reply.get_json(silent=True)
    t.require(reply.status_code == 404 and isinstance(body, dict) and body.get("code") == 404,
              f"`GET /api/events/{missing}` answers 404 with " '`{"code": 404, "error": "Not Found", "message": ...}`',
              f"it answered {reply.status_code} with `Content-Type: {reply.content_type}`",
              "Do you call `errors.register_error_handlers(app)` in `create_app`?")
    return names


@ex4.step("two apps from `create_app()` keep separate events")
def _separate_apps(t, names):
    first, second = names.create_app({"TESTING": True}), names.create_app({"TESTING": True})
    t.client(first).post("/api/events/", json=_new_event(t))
    listed = t.client(second).get("/api/events/").get_json(silent=True)
    t.require(listed == [], "a new app starts with no events, even after another app created one",
              f"the second app lists `{show(listed)}`",
              "Does each app get its own `EventService` (the blueprint's `record_once` does that), and "
              "does `create_app` build a new app each time?")
    return names


@ex4.step("best practice: the `tickethub` package has no module-level Flask app")
def _no_global_app(t, names):
    found = t.probe(_global_apps, names.module)
    t.require(not found, "no `Flask` app at module level in `tickethub/__init__.py`: apps come from `create_app()`",
              f"the module holds a Flask app named {', '.join(f'`{n}`' for n in found)}",
              "Did you create an app at import time (`app = Flask(__name__)` or `app = create_app()` "
              "outside the function)? Every importer would share it; build apps only inside `create_app`.")


setup, reset = chapter.setup, chapter.reset

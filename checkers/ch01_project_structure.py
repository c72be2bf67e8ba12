"""Checks for chapter 01: project structure (services, blueprints, JSON errors, the factory)."""
import importlib.util
import inspect
import json
import sys
import types

from flask import Blueprint, Flask, abort, url_for
from werkzeug.http import HTTP_STATUS_CODES

from .checking import show
from .exercise import Chapter

chapter = Chapter(__name__, "Project structure")

SERVICES = "tickethub/events/services.py"
HTTP_MODULES = ("flask", "werkzeug")


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


def _load_services(t):
    """Import the learner's `tickethub/events/services.py` on its own.

    `tickethub/events/__init__.py` imports `routes.py`, which exercise 2 writes later, so
    importing the module through its package would fail before exercise 2 is done.
    """
    name = "tickethub.events.services"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, t.project / SERVICES)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as an import would: dataclasses and pickling need it
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def _new_event(t):
    return {"name": f"{t.word().title()} {t.word().title()}", "capacity": t.rng.randrange(20, 5000)}


def _attempt(call):
    """Run `call()`; return ("ok", value) or ("raised", exception) for the learner's exceptions."""
    try:
        return "ok", call()
    except Exception as error:  # noqa: BLE001 — the step decides whether it was expected
        return "raised", error


def _raised(outcome):
    kind, value = outcome
    if kind == "ok":
        return f"it returned {show(value)}"
    try:
        text = " ".join(str(value).split())
    except Exception:  # noqa: BLE001 — a broken __str__ is the learner's, not ours
        text = ""
    text = text if len(text) <= 80 else text[:79] + "…"
    return f"it raised `{type(value).__name__}" + (f": {text}`" if text else "`")


@ex1.step("`tickethub/events/services.py` defines `EventService`, `EventNotFound` and `InvalidEvent`")
def _service_class(t):
    services = _load_services(t)
    for name in ("EventService", "EventNotFound", "InvalidEvent"):
        t.require(
            inspect.isclass(getattr(services, name, None)),
            f"a class `{name}` in `{SERVICES}`",
            f"`{name}` is {show(getattr(services, name, None))}",
            "Did you keep the class definitions that the exercise cell gives you?",
        )
    t.services = services
    t.service = services.EventService()


@ex1.step("`create_event(data)` stores an event and returns it as a `dict` with an `int` id")
def _create(t):
    data = _new_event(t)
    padded = {**data, "name": f"  {data['name']} "}
    event = t.service.create_event(padded)
    t.require(
        isinstance(event, dict),
        f"`create_event({padded})` returns the new event as a `dict`",
        f"it returned {show(event)}",
        "Does `create_event` end with `return event`?",
    )
    t.require(
        type(event.get("id")) is int,
        "the new event has an `int` id",
        f"the event is `{show(event)}`",
        "Do you give each event an id from a counter, such as `self._next_id`?",
    )
    t.require(
        event.get("name") == data["name"] and type(event.get("name")) is str,
        f"the event's name is `{data['name']!r}` (sent as `{padded['name']!r}`: without surrounding spaces)",
        f"the name is `{show(event.get('name'))}`",
        "Did you store `name.strip()`?",
    )
    t.require(
        event.get("capacity") == data["capacity"] and type(event.get("capacity")) is int,
        f"the event's capacity is `{data['capacity']}`",
        f"the event is `{show(event)}`",
        "Do you store the capacity the caller sent?",
    )
    t.first = event


@ex1.step("`get_event(id)` returns a stored event; `list_events()` lists them in id order")
def _get_and_list(t):
    events = [t.first] + [t.service.create_event(_new_event(t)) for _ in range(t.rng.randrange(2, 4))]
    ids = [e.get("id") if isinstance(e, dict) else None for e in events]
    t.require(
        all(type(i) is int for i in ids) and len(set(ids)) == len(ids),
        "every event gets an `int` id of its own",
        f"the ids of {len(ids)} new events are `{show(ids)}`",
        "Do you add 1 to the id counter after each event you store?",
    )
    for event in events:
        got = t.service.get_event(event["id"])
        t.require(
            got == event,
            f"`get_event({event['id']})` returns `{event}`",
            f"it returned {show(got)}",
            "Do you store each event under its id, and return it from `get_event`?",
        )
    listed = t.service.list_events()
    wanted = sorted(events, key=lambda e: e["id"])
    t.require(
        isinstance(listed, list) and listed == wanted,
        f"`list_events()` returns a `list` of the {len(events)} events, in id order: `{wanted}`",
        f"it returned {show(listed, 300)}",
        "Do you return a list (not a dict or its `.values()`) sorted by id?",
    )
    t.ids = ids


@ex1.step("`get_event` of an unknown id raises `EventNotFound`")
def _not_found(t):
    missing = max(t.ids) + t.rng.randrange(1, 50)
    outcome = _attempt(lambda: t.service.get_event(missing))
    t.require(
        outcome[0] == "raised" and isinstance(outcome[1], t.services.EventNotFound),
        f"`get_event({missing})` raises `EventNotFound` (no event has that id)",
        _raised(outcome),
        "Did you catch the `KeyError` and `raise EventNotFound(event_id)`? The view will turn it "
        "into a 404; returning `None` would hide the problem.",
    )


@ex1.step("invalid data raises `InvalidEvent` whose `errors` names exactly the bad fields")
def _invalid(t):
    name = f"{t.word().title()} {t.word().title()}"
    capacity = t.rng.randrange(20, 5000)
    cases = [
        ({"capacity": capacity}, {"name"}),
        ({"name": " " * t.rng.randrange(1, 4), "capacity": capacity}, {"name"}),
        ({"name": t.rng.randrange(1, 99), "capacity": capacity}, {"name"}),
        ({"name": name, "capacity": str(capacity)}, {"capacity"}),
        ({"name": name, "capacity": 0}, {"capacity"}),
        ({"name": name, "capacity": -capacity}, {"capacity"}),
        ({"name": name, "capacity": True}, {"capacity"}),
        ({"name": name, "capacity": capacity + 0.5}, {"capacity"}),
        ({"name": name}, {"capacity"}),
        ({}, {"name", "capacity"}),
        (None, {"name", "capacity"}),
        ([name, capacity], {"name", "capacity"}),
    ]
    before = len(t.service.list_events())
    for data, bad in cases:
        outcome = _attempt(lambda: t.service.create_event(data))
        call = f"`create_event({data!r})`"
        fields = " and ".join(f"`{f}`" for f in sorted(bad))
        verb = "breaks" if len(bad) == 1 else "break"
        t.require(
            outcome[0] == "raised" and isinstance(outcome[1], t.services.InvalidEvent),
            f"{call} raises `InvalidEvent` ({fields} {verb} a rule)",
            _raised(outcome),
            "Do you check that `name` is a non-blank string and that `capacity` is an `int` "
            "(`type(capacity) is int`, so not `True`) of at least 1? Is `data` a `dict` at all?"
            if outcome[0] == "ok"
            else "Do you check the type of `data` and its values before using them, and raise "
            "`InvalidEvent(errors)` for every broken rule?",
        )
        errors = getattr(outcome[1], "errors", None)
        t.require(
            isinstance(errors, dict) and set(errors) == bad,
            f"{call} raises `InvalidEvent` whose `errors` is a `dict` with the keys {fields} only",
            f"`errors` is `{show(errors)}`",
            "Do you collect one entry per bad field (`errors[\"name\"] = \"...\"`), and leave the "
            "fields that are fine out?",
        )
    after = t.service.list_events()
    t.require(
        len(after) == before,
        "invalid events are not stored",
        f"`list_events()` went from {before} to {len(after)} events",
        "Do you raise `InvalidEvent` before storing anything?",
    )


@ex1.step("two `EventService` objects do not share their events")
def _separate(t):
    first, second = t.services.EventService(), t.services.EventService()
    event = first.create_event(_new_event(t))
    listed = second.list_events()
    t.require(
        listed == [],
        "a new `EventService()` starts empty, even after another service stored an event",
        f"the second service lists `{show(listed)}`",
        "Do you keep the events on the instance (`self._events = {}` inside `__init__`), rather "
        "than in a class attribute or a module variable that every service shares?",
    )
    outcome = _attempt(lambda: second.get_event(event["id"]))
    t.require(
        outcome[0] == "raised" and isinstance(outcome[1], t.services.EventNotFound),
        f"the second service's `get_event({event['id']})` raises `EventNotFound`",
        _raised(outcome),
        "Does each service keep its own events (and its own id counter) in `__init__`?",
    )


def _from_http_library(value):
    """Return the Flask or Werkzeug module a global comes from, or None."""
    if isinstance(value, types.ModuleType):
        origin = value.__name__
    elif inspect.isclass(value) or inspect.isroutine(value):
        origin = getattr(value, "__module__", "") or ""
    else:  # an object: its real type (type() sees through proxies such as `request`)
        origin = type(value).__module__
    return origin if origin.split(".")[0] in HTTP_MODULES else None


@ex1.step("best practice: `tickethub/events/services.py` imports nothing from Flask or Werkzeug")
def _no_http(t):
    found = sorted(
        f"`{name}` (from `{origin}`)"
        for name, value in vars(t.services).items()
        if not name.startswith("__") and (origin := _from_http_library(value))
    )
    t.require(
        not found,
        "a service layer free of HTTP: no Flask or Werkzeug names in the module",
        "the module holds " + ", ".join(found),
        "Does the service use `abort`, `request` or `jsonify`? Raise `EventNotFound` or "
        "`InvalidEvent` instead, and let the views in `routes.py` translate them into HTTP.",
    )


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


@ex2.step("`tickethub/events/routes.py` defines `bp`, a `Blueprint` named `events`")
def _events_bp(t):
    routes = t.module("tickethub.events.routes")
    bp = getattr(routes, "bp", None)
    t.require(
        isinstance(bp, Blueprint) and bp.name == "events",
        "a `Blueprint` named `events` in `bp`",
        f"`bp` is {show(bp)}" + (f", named `{bp.name}`" if isinstance(bp, Blueprint) else ""),
        "Did you keep the line `bp = Blueprint(\"events\", __name__)`?",
    )
    t.bp = bp
    t.services = t.module("tickethub.events.services")


@ex2.step("registering `bp` gives the app its own `EventService` in `app.extensions[\"events\"]`")
def _registered(t):
    t.prefix = f"/{t.word()}/{t.word()}"
    app = Flask("check")
    app.config["TESTING"] = True
    app.register_blueprint(t.bp, url_prefix=t.prefix)
    service = app.extensions.get("events")
    t.require(
        isinstance(service, t.services.EventService),
        "`app.extensions[\"events\"]` holds an `EventService` once the blueprint is registered",
        f"it holds {show(service)}",
        "Did you keep the given `@bp.record_once` function `create_service`?",
    )
    t.app, t.service, t.client = app, service, app.test_client()


def _request(t, method, url, **kwargs):
    """Send a request; a service exception escaping the view fails with a clear message."""
    try:
        return t.client.open(url, method=method, **kwargs)
    except (t.services.EventNotFound, t.services.InvalidEvent) as error:
        name = type(error).__name__
        t.fail(
            f"`{method} {url}` turns `{name}` into an HTTP answer",
            f"`{name}` escaped from the view (a real client would get a 500 error page)",
            "Do you catch `EventNotFound` (→ `abort(404, ...)`) and `InvalidEvent` "
            "(→ `return {\"errors\": ...}, 422`) around the service calls?",
        )


@ex2.step("`GET <prefix>/` lists the events the service holds")
def _list(t):
    url = f"{t.prefix}/"
    body = t.json(_request(t, "GET", url), 200, "the list of events",
                  "Is there a route `@bp.get(\"/\")` that returns `service().list_events()`?")
    t.require(body == [], "`[]` before any event exists", f"`{show(body)}`",
              "Does the view return `service().list_events()` rather than data of its own?")
    t.seeded = [t.service.create_event(_new_event(t)) for _ in range(t.rng.randrange(2, 4))]
    body = t.json(_request(t, "GET", url), 200, "the list of events")
    t.require(
        body == t.seeded,
        f"the events stored in `app.extensions[\"events\"]`: `{t.seeded}`",
        f"`{show(body, 300)}`",
        "Does the view return `service().list_events()`, so it shows what the service holds?",
    )


@ex2.step("`GET <prefix>/<id>` answers the event, or 404 when there is no such event")
def _get(t):
    event = t.rng.choice(t.seeded)
    url = f"{t.prefix}/{event['id']}"
    body = t.json(_request(t, "GET", url), 200, "the event as JSON",
                  "Is there a route `@bp.get(\"/<int:event_id>\")` that returns "
                  "`service().get_event(event_id)`?")
    t.require(body == event, f"`{event}`", f"`{show(body)}`",
              "Does the view return `service().get_event(event_id)`?")
    missing = max(e["id"] for e in t.seeded) + t.rng.randrange(1, 50)
    response = _request(t, "GET", f"{t.prefix}/{missing}")
    t.require(
        response.status_code == 404,
        f"`GET {t.prefix}/{missing}` answers 404 (no event has that id)",
        f"it answered {response.status_code}",
        "Do you catch `EventNotFound` and call `abort(404, description=...)`?",
    )


@ex2.step("`POST <prefix>/` answers 201 with the new event and its URL in `Location`")
def _create_view(t):
    data = _new_event(t)
    url = f"{t.prefix}/"
    response = _request(t, "POST", url, json=data)
    body = t.json(response, 201, "the new event as JSON",
                  "Is there a route `@bp.post(\"/\")`, and does it return `event, 201, {...}`?")
    t.require(
        isinstance(body, dict) and type(body.get("id")) is int
        and body.get("name") == data["name"] and body.get("capacity") == data["capacity"],
        f"the new event, `{{\"id\": <int>, \"name\": {data['name']!r}, \"capacity\": {data['capacity']}}}`",
        f"`{show(body)}`",
        "Do you pass `request.get_json(silent=True)` to `service().create_event(...)` and return "
        "the event it gives back?",
    )
    with t.app.test_request_context():
        wanted = url_for("events.get_event", event_id=body["id"])
    location = response.headers.get("Location")
    t.require(
        location in (wanted, "http://localhost" + wanted),
        f"the `Location` header is the new event's URL, `{wanted}` (the blueprint is registered "
        f"at `{t.prefix}`)",
        f"`Location: {location}`" if location else "no `Location` header",
        "Do you return `event, 201, {\"Location\": url_for(\".get_event\", event_id=event[\"id\"])}`? "
        "A URL written by hand breaks when the blueprint moves to another prefix.",
    )
    stored = _attempt(lambda: t.service.get_event(body["id"]))
    t.require(
        stored == ("ok", body),
        f"the event created by `POST {url}` is in the app's service: `get_event({body['id']})` "
        f"returns `{body}`",
        _raised(stored),
        "Does the view store the event through `service().create_event(...)`, rather than "
        "keeping events of its own?",
    )


@ex2.step("`POST <prefix>/` with invalid data answers 422 with `{\"errors\": {...}}`")
def _invalid_view(t):
    url = f"{t.prefix}/"
    name = f"{t.word().title()} {t.word().title()}"
    capacity = t.rng.randrange(20, 5000)
    before = len(t.service.list_events())
    for kwargs, field, what in (
        ({"json": {"name": name, "capacity": str(capacity)}}, "capacity", f"a capacity of `\"{capacity}\"`"),
        ({"json": {"capacity": capacity}}, "name", "no name"),
        ({"data": f"{name}, {capacity}", "content_type": "text/plain"}, "name", "a body that is not JSON"),
    ):
        body = t.json(
            _request(t, "POST", url, **kwargs), 422, f"the errors for {what}",
            "Do you catch `InvalidEvent` and `return {\"errors\": invalid.errors}, 422`? For a body "
            "that is not JSON, do you read it with `request.get_json(silent=True)` and let the "
            "service reject the `None`?",
        )
        errors = body.get("errors") if isinstance(body, dict) else None
        t.require(
            isinstance(errors, dict) and field in errors,
            f"a body `{{\"errors\": {{...}}}}` that names `{field}`, for {what}",
            f"`{show(body)}`",
            "Do you return the exception's `errors` dict under the key `\"errors\"`?",
        )
    after = len(t.service.list_events())
    t.require(after == before, "invalid events are not stored",
              f"the service went from {before} to {after} events",
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
        "Return `{\"code\": error.code, \"error\": error.name, \"message\": error.description}, "
        "error.code`. For unexpected exceptions add a second handler, "
        "`@app.errorhandler(InternalServerError)`, that answers a fixed message with 500: never "
        "`str(error)` or `error.original_exception`, which may hold secrets.",
        "The second handler: `@app.errorhandler(InternalServerError)` on a function that, for "
        "paths under `/api/`, returns `{\"code\": 500, \"error\": \"Internal Server Error\", "
        "\"message\": \"Something went wrong on our side.\"}, 500`, and otherwise `return error`. "
        "`ex3.solution()` shows the whole file.",
    ],
)


def _errors_app(t, propagate=True):
    """A fresh app (TESTING off) with the learner's handlers and routes that fail on purpose.

    With `propagate`, an exception raised *by the learner's handler* reaches the check (and
    shows the learner's line) instead of becoming a 500 page.
    """
    app = Flask("check")
    if propagate:
        app.config["PROPAGATE_EXCEPTIONS"] = True
    t.register(app)
    secret = t.secret

    @app.get(f"/api/{t.area}/fail/<int:code>")
    def fail(code):
        abort(code, description=t.descriptions[code])

    @app.get(f"/api/{t.area}/crash")
    def crash():
        raise RuntimeError(f"database password is {secret}")

    @app.get(f"/{t.area}/page")
    def page():
        return "<h1>A page</h1>"

    return app


@ex3.step("`tickethub/errors.py` defines `register_error_handlers(app)`")
def _errors_module(t):
    errors = t.module("tickethub.errors")
    register = getattr(errors, "register_error_handlers", None)
    t.require(
        callable(register),
        "a function `register_error_handlers(app)` in `tickethub/errors.py`",
        f"`register_error_handlers` is {show(register)}",
        "Did you keep the line `def register_error_handlers(app):`?",
    )
    t.register = register
    t.area = t.word()
    t.secret = f"{t.word()}-{t.rng.randrange(10**6, 10**7)}"
    t.descriptions = {
        code: f"{t.word().title()} {t.word()} {t.word()} {t.rng.randrange(10, 99)}." for code in ERROR_CODES
    }


def _error_body(t, response, code, what, message=None):
    """Check a JSON error: its status, and the body `{"code", "error", "message"}`."""
    request = f"`{response.request.method} {response.request.path}`"
    t.require(
        response.status_code == code,
        f"{request} answers {code}, with {what}",
        f"it answered {response.status_code}",
        "Does your handler return `(body, error.code)`, so the status stays the error's own?",
    )
    t.require(
        response.is_json,
        f"{request} answers {code} with {what}",
        f"it answered {code} with `Content-Type: {response.content_type}`",
        "Did you register a handler with `@app.errorhandler(HTTPException)` inside "
        "`register_error_handlers(app)`, and does it return a `dict` for paths under `/api/`?",
    )
    body = response.get_json()
    wanted = {"code": code, "error": HTTP_STATUS_CODES[code]}
    if message is not None:
        wanted["message"] = message
    ok = (
        isinstance(body, dict)
        and isinstance(body.get("message"), str)
        and all(body.get(k) == v and type(body.get(k)) is type(v) for k, v in wanted.items())
    )
    shape = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in wanted.items())
    if message is None:
        shape += ', "message": "..."'
    t.require(
        ok,
        f"the body `{{{shape}}}`",
        f"`{show(body, 200)}`",
        "Does the body use `error.code` (an `int`), `error.name` and `error.description`, under "
        "the keys `code`, `error` and `message`?",
    )


@ex3.step("`abort(code, description=...)` under `/api/` answers that status with a JSON body")
def _aborts(t):
    client = _errors_app(t).test_client()
    for code in t.rng.sample(ERROR_CODES, 3):
        response = client.get(f"/api/{t.area}/fail/{code}")
        _error_body(t, response, code, f"a JSON error for `abort({code}, ...)`", t.descriptions[code])


@ex3.step("an unknown URL or a wrong method under `/api/` answers a JSON 404 or 405")
def _unknown(t):
    client = _errors_app(t).test_client()
    missing = f"/api/{t.word()}/{t.rng.randrange(1, 999)}"
    _error_body(t, client.get(missing), 404, "a JSON 404 for a URL that matches no route")
    _error_body(t, client.post(f"/api/{t.area}/crash"), 405, "a JSON 405 for a method the route does not allow")


@ex3.step("an unexpected exception under `/api/` answers a JSON 500 that reveals nothing of it")
def _crash(t):
    client = _errors_app(t, propagate=False).test_client()
    response = client.get(f"/api/{t.area}/crash")
    body = t.json(response, 500, "a JSON error",
                  "Is there a handler for `InternalServerError` (or for `HTTPException`, which "
                  "includes it) that answers JSON under `/api/`?")
    t.require(
        isinstance(body, dict) and body.get("code") == 500 and type(body.get("code")) is int
        and isinstance(body.get("error"), str) and isinstance(body.get("message"), str),
        '`{"code": 500, "error": "...", "message": "..."}`',
        f"`{show(body, 200)}`",
        "Does the 500 answer have the same keys as the other errors?",
    )
    t.require(
        t.secret not in response.get_data(as_text=True),
        "a 500 body that does not repeat the exception's message (it may hold secrets)",
        f"the body contains the exception's text: `{show(body, 200)}`",
        "Do you answer a fixed message, rather than `str(error)` or `error.original_exception`?",
    )


@ex3.step("outside `/api/`, errors keep Flask's HTML pages")
def _html(t):
    client = _errors_app(t).test_client()
    url = f"/{t.area}/{t.word()}"
    response = client.get(url)
    t.require(
        response.status_code == 404 and not response.is_json,
        f"`GET {url}` answers 404 with Flask's HTML page (it is not part of the API)",
        f"it answered {response.status_code} with `Content-Type: {response.content_type}`",
        "Does your handler check `request.path.startswith(\"/api/\")`, and `return error` "
        "unchanged for other paths?",
    )


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


@ex4.step("`tickethub` defines `create_app(test_config=None)`")
def _signature(t):
    tickethub = t.module("tickethub")
    create_app = getattr(tickethub, "create_app", None)
    t.require(callable(create_app), "a function `create_app` in `tickethub/__init__.py`",
              f"`create_app` is {show(create_app)}",
              "Did you keep the line `def create_app(test_config=None):`?")
    try:
        parameter = inspect.signature(create_app).parameters.get("test_config")
    except (TypeError, ValueError):
        parameter = None
    t.require(
        parameter is not None and parameter.default is None,
        "a parameter `test_config` that defaults to `None`",
        f"the signature is `create_app{_signature_text(create_app)}`",
        "Did you keep the line `def create_app(test_config=None):`?",
    )
    t.tickethub, t.create_app = tickethub, create_app


def _signature_text(function):
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return "(...)"


@ex4.step("each call returns a new Flask app, configured by `test_config`")
def _new_apps(t):
    key, value = f"CHECK_{t.word().upper()}", t.word()
    first = t.create_app({"TESTING": True, key: value})
    t.require(isinstance(first, Flask), "`create_app({...})` returns a Flask app",
              f"it returned {show(first)}", "Does `create_app` end with `return app`?")
    second = t.create_app()
    t.require(isinstance(second, Flask), "`create_app()`, with no argument, returns a Flask app",
              f"it returned {show(second)}", "Does `create_app` work when `test_config` is `None`?")
    t.require(
        first is not second,
        "two calls return two different apps",
        "both calls returned the same app object",
        "Does `create_app` make a new `Flask(__name__)` on every call, rather than returning a "
        "global `app`?",
    )
    t.require(
        first.config.get(key) == value and first.testing is True,
        f"`create_app({{\"TESTING\": True, \"{key}\": \"{value}\"}})` puts both settings in `app.config`",
        f"`app.config[\"{key}\"]` is {show(first.config.get(key))}, `app.testing` is {first.testing}",
        "Do you call `app.config.from_mapping(test_config)` when `test_config` is not `None`?",
    )
    t.require(
        key not in second.config,
        f"`{key}` given to one call does not appear in the app of another call",
        f"the other app has `{key}` = {show(second.config.get(key))}",
        "Do you apply `test_config` to the new app only (not to a shared config object)?",
    )
    t.app = first


@ex4.step("the `warmup`, `venues` and `events` blueprints are registered")
def _blueprints(t):
    names = sorted(t.app.blueprints)
    missing = [n for n in ("warmup", "venues", "events") if n not in names]
    t.require(
        not missing,
        "the blueprints `warmup`, `venues` and `events` in `app.blueprints`",
        f"`app.blueprints` has {', '.join(f'`{n}`' for n in names) or 'none'}",
        f"Did you call `app.register_blueprint({missing[0] if missing else ''}.bp, ...)` in `create_app`?",
    )


@ex4.step("events routes live under `/api/events/`, venues routes under `/api/venues/`")
def _prefixes(t):
    rules = list(t.app.url_map.iter_rules())
    for feature in ("events", "venues"):
        prefix = f"/api/{feature}"
        found = sorted(r.rule for r in rules if r.endpoint.startswith(f"{feature}."))
        t.require(
            found and all(rule.startswith(prefix + "/") for rule in found),
            f"every route of the `{feature}` blueprint under `{prefix}/`",
            f"its routes are {', '.join(f'`{r}`' for r in found) or 'missing'}",
            f"Did you register it with `app.register_blueprint({feature}.bp, url_prefix=\"{prefix}\")`?",
        )
    event_id, venue_id = t.rng.randrange(1, 999), t.rng.randrange(1, 999)
    with t.app.test_request_context():
        built = (url_for("events.get_event", event_id=event_id), url_for("venues.get_venue", venue_id=venue_id))
    wanted = (f"/api/events/{event_id}", f"/api/venues/{venue_id}")
    t.require(
        built == wanted,
        f"`url_for(\"events.get_event\", event_id={event_id})` gives `{wanted[0]}`, and "
        f"`url_for(\"venues.get_venue\", venue_id={venue_id})` gives `{wanted[1]}`",
        f"they give `{built[0]}` and `{built[1]}`",
        "Are the prefixes exactly `/api/events` and `/api/venues`?",
    )


@ex4.step("end to end: `POST /api/events/`, then `GET /api/events/<id>`, with JSON errors")
def _end_to_end(t):
    client = t.app.test_client()
    data = _new_event(t)
    created = t.json(client.post("/api/events/", json=data), 201, "the new event",
                     "Is the `events` blueprint registered at `/api/events`?")
    t.require(
        isinstance(created, dict) and type(created.get("id")) is int,
        "the new event as a JSON object with an `int` id",
        f"`{show(created)}`",
        "Does the `create_event` view return the event that the service gives back?",
    )
    event_id = created["id"]
    body = t.json(client.get(f"/api/events/{event_id}"), 200, "the event just created")
    t.require(body == created, f"`{created}`", f"`{show(body)}`",
              "Does the app keep the events it creates?")
    venues = t.json(client.get("/api/venues/"), 200, "the list of venues",
                    "Is the `venues` blueprint registered at `/api/venues`?")
    t.require(isinstance(venues, list) and venues, "a non-empty list of venues", f"`{show(venues)}`")
    missing = event_id + t.rng.randrange(1, 50)
    response = client.get(f"/api/events/{missing}")
    body = response.get_json(silent=True)
    t.require(
        response.status_code == 404 and isinstance(body, dict) and body.get("code") == 404,
        f"`GET /api/events/{missing}` answers 404 with "
        '`{"code": 404, "error": "Not Found", "message": ...}`',
        f"it answered {response.status_code} with `Content-Type: {response.content_type}`",
        "Do you call `errors.register_error_handlers(app)` in `create_app`?",
    )


@ex4.step("two apps from `create_app()` keep separate events")
def _separate_apps(t):
    first, second = t.create_app({"TESTING": True}), t.create_app({"TESTING": True})
    first.test_client().post("/api/events/", json=_new_event(t))
    listed = second.test_client().get("/api/events/").get_json()
    t.require(
        listed == [],
        "a new app starts with no events, even after another app created one",
        f"the second app lists `{show(listed)}`",
        "Does each app get its own `EventService` (the blueprint's `record_once` does that), and "
        "does `create_app` build a new app each time?",
    )


@ex4.step("best practice: the `tickethub` package has no module-level Flask app")
def _no_global_app(t):
    found = sorted(name for name, value in vars(t.tickethub).items() if isinstance(value, Flask))
    t.require(
        not found,
        "no `Flask` app at module level in `tickethub/__init__.py`: apps come from `create_app()`",
        f"the module holds a Flask app named {', '.join(f'`{n}`' for n in found)}",
        "Did you create an app at import time (`app = Flask(__name__)` or `app = create_app()` "
        "outside the function)? Every importer would share it; build apps only inside `create_app`.",
    )


setup, reset = chapter.setup, chapter.reset

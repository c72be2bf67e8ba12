"""Do chapter 01's checks accept right answers and reject wrong ones?"""
import pytest

from checkers.engine import workspace
from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "01-project-structure"
SERVICES = "tickethub/events/services.py"
ROUTES = "tickethub/events/routes.py"
ERRORS = "tickethub/errors.py"
INIT = "tickethub/__init__.py"


def starter(path):
    """The starter version of one of the chapter's files."""
    return workspace.files(CHAPTER, "starter")[path]


# --- exercise 1: the event service ---------------------------------------------------------

SERVICES_ALTERNATIVE = '''
"""Business rules for events, independent of HTTP."""
import itertools


class EventNotFound(LookupError):
    """No event has the given id."""


class InvalidEvent(ValueError):
    """The data for an event breaks a rule; `errors` maps each bad field to a message."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def _problems(data):
    if not isinstance(data, dict):
        return {"name": "required", "capacity": "required"}
    problems = {}
    name, capacity = data.get("name"), data.get("capacity")
    if not (isinstance(name, str) and name.strip()):
        problems["name"] = "required"
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
        problems["capacity"] = "must be a positive whole number"
    return problems


class EventService:
    """Keeps the events of one app, in a list."""

    def __init__(self):
        self.events = []
        self.ids = itertools.count(1)

    def list_events(self):
        return [dict(event) for event in sorted(self.events, key=lambda e: e["id"])]

    def get_event(self, event_id):
        for event in self.events:
            if event["id"] == event_id:
                return dict(event)
        raise EventNotFound(f"no event {event_id}")

    def create_event(self, data):
        problems = _problems(data)
        if problems:
            raise InvalidEvent(problems)
        event = dict(id=next(self.ids), name=data["name"].strip(), capacity=data["capacity"])
        self.events.append(event)
        return dict(event)
'''


def test_ex1_alternative_passes(project):
    """Is a list-based store with copies, a counter and a helper function accepted?"""
    assert_outcome(project(CHAPTER).write(SERVICES, SERVICES_ALTERNATIVE).check("ex1"), Outcome.PASS)


def test_ex1_passes_before_routes_exist(project):
    """Does exercise 1 pass while `events/routes.py` (exercise 2) is not written yet?"""
    p = project(CHAPTER, "start")
    solution = workspace.files(CHAPTER, "solution")
    for path in (SERVICES, "tickethub/events/__init__.py"):
        p.write(path, solution[path])
    assert not (p.root / ROUTES).exists()
    assert_outcome(p.check("ex1"), Outcome.PASS)


def test_ex1_missing_file_is_not_attempted(project):
    """Is an exercise cell that was never run (the file missing) not attempted?"""
    assert_outcome(project(CHAPTER, "start").check("ex1"), Outcome.NOT_ATTEMPTED)


def test_ex1_syntax_error_points_at_the_learner(project):
    """Does a syntax error show the learner's file and line?"""
    p = project(CHAPTER).edit(SERVICES, "        errors = {}\n", "        errors = {\n")
    assert_outcome(p.check("ex1"), Outcome.ERROR, SERVICES)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # the events in a class attribute: every service shares them
            '    def __init__(self):\n        self._events = {}\n',
            '    _events = {}\n\n    def __init__(self):\n',
            "Do you keep the events on the instance",
        ),
        (  # isinstance lets True through as a capacity
            "if type(capacity) is not int or capacity < 1:",
            "if not isinstance(capacity, int) or capacity < 1:",
            "'capacity': True",
        ),
        (  # the name kept with its spaces
            '"name": name.strip(),',
            '"name": name,',
            "Did you store `name.strip()`?",
        ),
        (  # None for an unknown id
            "            return self._events[event_id]\n        except KeyError:\n            raise EventNotFound(event_id) from None\n",
            "            return self._events.get(event_id)\n        except KeyError:\n            raise\n",
            "Did you catch the `KeyError`",
        ),
        (  # the dict itself rather than a list
            "return [self._events[key] for key in sorted(self._events)]",
            "return self._events",
            "Do you return a list",
        ),
        (  # newest first
            "return [self._events[key] for key in sorted(self._events)]",
            "return [self._events[key] for key in sorted(self._events, reverse=True)]",
            "in id order",
        ),
        (  # every error names both fields
            'errors["name"] = "Give the event a name."',
            'errors["name"] = errors["capacity"] = "Bad event."',
            "Do you collect one entry per bad field",
        ),
        (  # no check that data is a dict
            'name = data.get("name") if isinstance(data, dict) else None\n'
            '        capacity = data.get("capacity") if isinstance(data, dict) else None',
            'name = data.get("name")\n        capacity = data.get("capacity")',
            "it raised `AttributeError",
        ),
        (  # HTTP in the service layer
            '"""Business rules for events, independent of HTTP."""\n',
            '"""Business rules for events."""\nfrom werkzeug.exceptions import NotFound\n',
            "`NotFound` (from `werkzeug.exceptions`)",
        ),
    ],
)
def test_ex1_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(SERVICES, old, new).sweep("ex1"), expected)


def test_ex1_abort_in_the_service_fails(project):
    """Does a service that calls Flask's `abort` instead of raising `EventNotFound` fail?"""
    p = project(CHAPTER).edit(SERVICES, '"""Business rules for events, independent of HTTP."""\n',
                              '"""Business rules for events."""\nfrom flask import abort\n')
    p = p.edit(SERVICES, "raise EventNotFound(event_id) from None", "abort(404)")
    assert_outcome(p.check("ex1"), Outcome.FAIL, "it raised `NotFound")


# --- exercise 2: the events blueprint ------------------------------------------------------

ROUTES_ALTERNATIVE = '''
"""HTTP views for events, one function per URL."""
from flask import Blueprint, abort, current_app, jsonify, request, url_for

from .services import EventNotFound, EventService, InvalidEvent

bp = Blueprint("events", __name__)


@bp.record_once
def create_service(state):
    state.app.extensions["events"] = EventService()


def service() -> EventService:
    return current_app.extensions["events"]


@bp.route("/", methods=["GET", "POST"])
def events():
    if request.method == "GET":
        return jsonify(service().list_events())
    try:
        event = service().create_event(request.get_json(silent=True))
    except InvalidEvent as invalid:
        return jsonify(errors=invalid.errors), 422
    response = jsonify(event)
    response.status_code = 201
    response.headers["Location"] = url_for("events.get_event", event_id=event["id"], _external=True)
    return response


@bp.route("/<int:event_id>")
def get_event(event_id):
    try:
        return jsonify(service().get_event(event_id))
    except EventNotFound:
        abort(404)
'''


def test_ex2_alternative_passes(project):
    """Is one view for GET and POST, `jsonify` and an absolute `Location` accepted?"""
    assert_outcome(project(CHAPTER).write(ROUTES, ROUTES_ALTERNATIVE).check("ex2"), Outcome.PASS)


def test_ex2_is_skipped_while_ex1_is_not_done(project):
    """Does exercise 2 point back to exercise 1 when the service is still the starter?"""
    p = project(CHAPTER).write(SERVICES, starter(SERVICES))
    assert_outcome(p.check("ex2"), Outcome.FAIL, "Fix exercise 1 first")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # a Location written by hand
            'url_for(".get_event", event_id=event["id"])',
            'f"/api/events/{event[\'id\']}"',
            "A URL written by hand breaks",
        ),
        (  # 200 instead of 201
            "return event, 201, {",
            "return event, 200, {",
            "answered 200",
        ),
        (  # EventNotFound not translated
            "    try:\n        return service().get_event(event_id)\n    except EventNotFound:\n"
            '        abort(404, description=f"There is no event {event_id}.")\n',
            "    return service().get_event(event_id)\n",
            "`EventNotFound` escaped from the view",
        ),
        (  # 400 instead of 422
            'return {"errors": invalid.errors}, 422',
            'return {"errors": invalid.errors}, 400',
            "answered 400",
        ),
        (  # request.json refuses a body that is not JSON with its own 415
            "request.get_json(silent=True)",
            "request.json",
            "answered 415",
        ),
        (  # the errors under another key
            'return {"errors": invalid.errors}, 422',
            'return {"error": invalid.errors}, 422',
            "under the key `\"errors\"`",
        ),
        (  # a view that does not read through the service
            "    return service().list_events()\n",
            "    return []\n",
            "so it shows what the service holds",
        ),
        (  # a GET route for creating
            '@bp.post("/")',
            '@bp.get("/new")',
            "answered 405",
        ),
    ],
)
def test_ex2_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(ROUTES, old, new).sweep("ex2"), expected)


# --- exercise 3: JSON errors ---------------------------------------------------------------

ERRORS_ALTERNATIVE = '''
"""JSON error responses for the API, from one handler."""
from flask import jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError


def register_error_handlers(app):
    @app.errorhandler(Exception)
    def any_error(error):
        http = error if isinstance(error, HTTPException) else InternalServerError()
        if not request.path.startswith("/api/"):
            return http
        message = http.description if isinstance(error, HTTPException) else "Sorry, that failed."
        headers = [(k, v) for k, v in http.get_headers() if k.lower() != "content-type"]  # a 405's Allow
        return jsonify(code=http.code, error=http.name, message=message), http.code, headers
'''


def test_ex3_alternative_passes(project):
    """Is one handler for every `Exception`, answering with `jsonify`, accepted?"""
    assert_outcome(project(CHAPTER).write(ERRORS, ERRORS_ALTERNATIVE).check("ex3"), Outcome.PASS)


def test_ex3_handler_bug_points_at_the_learner(project):
    """Does an exception raised by the learner's handler show the learner's line?"""
    p = project(CHAPTER).edit(ERRORS, '"message": error.description}', '"message": error.details}')
    assert_outcome(p.check("ex3"), Outcome.ERROR, ERRORS, "AttributeError")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # the exception's text in the 500 body
            '"message": "Something went wrong on our side."}',
            '"message": str(error.original_exception)}',
            "does not repeat the exception's message",
        ),
        (  # JSON everywhere, even for web pages
            "    def http_error(error):\n        if not request.path.startswith(\"/api/\"):\n            return error\n",
            "    def http_error(error):\n",
            "Does your handler check `request.path.startswith",
        ),
        (  # the body returned with the status, as before: `Allow` is lost
            "        response = error.get_response()\n        response.data = json.dumps({\"code\": error.code, \"error\": error.name, \"message\": error.description})\n        response.content_type = \"application/json\"\n        return response\n",
            "        return {\"code\": error.code, \"error\": error.name, \"message\": error.description}, error.code\n",
            "keeps its `Allow` header",
        ),
        (  # the right body with status 200
            "        response = error.get_response()\n        response.data = json.dumps({\"code\": error.code",
            "        response = app.response_class()\n        response.data = json.dumps({\"code\": error.code",
            "answered 200",
        ),
        (  # the right body and status, in a new response without the error's headers
            "        response = error.get_response()\n        response.data = json.dumps({\"code\": error.code",
            "        response = app.response_class(status=error.code)\n        response.data = json.dumps({\"code\": error.code",
            "keeps its `Allow` header",
        ),
        (  # other key names
            '{"code": error.code, "error": error.name, "message": error.description}',
            '{"status": error.code, "error": error.name, "message": error.description}',
            "under the keys `code`, `error` and `message`",
        ),
        (  # every error called "Not Found"
            '"error": error.name,',
            '"error": "Not Found",',
            "`error.name`",
        ),
        (  # no handlers registered at all for HTTP errors
            "@app.errorhandler(HTTPException)",
            "@app.errorhandler(418)",
            "with `Content-Type: text/html",
        ),
    ],
)
def test_ex3_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(ERRORS, old, new).sweep("ex3"), expected)


# --- exercise 4: the application factory ---------------------------------------------------

INIT_ALTERNATIVE = '''
"""TicketHub: sell tickets to events."""
from flask import Flask

from . import errors, events, venues, warmup

BLUEPRINTS = ((warmup.bp, None), (venues.bp, "/api/venues"), (events.bp, "/api/events"))


def create_app(test_config=None):
    """Create and configure an instance of the TicketHub app."""
    app = Flask(__name__)
    app.config.update({"SECRET_KEY": "dev", **(test_config or {})})  # the caller's settings win
    for blueprint, prefix in BLUEPRINTS:
        app.register_blueprint(blueprint, url_prefix=prefix)
    errors.register_error_handlers(app)
    return app
'''

GLOBAL_APP = '''
"""TicketHub, with one global app."""
from flask import Flask

from . import errors, events, venues, warmup

app = Flask(__name__)
app.config.from_mapping(SECRET_KEY="dev")
app.register_blueprint(warmup.bp)
app.register_blueprint(venues.bp, url_prefix="/api/venues")
app.register_blueprint(events.bp, url_prefix="/api/events")
errors.register_error_handlers(app)


def create_app(test_config=None):
    """Return the app."""
    if test_config is not None:
        app.config.from_mapping(test_config)
    return app
'''


def test_ex4_alternative_passes(project):
    """Are top-level imports, a loop over blueprints and `config.update` accepted?"""
    assert_outcome(project(CHAPTER).write(INIT, INIT_ALTERNATIVE).check("ex4"), Outcome.PASS)


def test_ex4_chapter00_factory_is_not_attempted(project):
    """Is chapter 00's factory, left as it was, not attempted?"""
    p = project(CHAPTER).write(INIT, workspace.files(CHAPTER, "start")[INIT])
    assert_outcome(p.check("ex4"), Outcome.NOT_ATTEMPTED)


def test_ex4_is_skipped_while_ex3_is_not_done(project):
    """Does the factory point back to exercise 3 when `errors.py` is still the starter?"""
    p = project(CHAPTER).write(ERRORS, starter(ERRORS))
    assert_outcome(p.check("ex4"), Outcome.FAIL, "Fix exercise 3 first")


def test_ex4_global_app_fails(project):
    """Does a factory that hands out one global app fail?"""
    assert_outcome(project(CHAPTER).write(INIT, GLOBAL_APP).check("ex4"), Outcome.FAIL,
                   "two calls return two different apps")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # an app built at import time, besides the factory
            "    return app\n",
            "    return app\n\n\napp = create_app()\n",
            "the module holds a Flask app named `app`",
        ),
        (  # the events blueprint at the wrong prefix
            'url_prefix="/api/events"',
            'url_prefix="/events"',
            "every route of the `events` blueprint under `/api/events/`",
        ),
        (  # no JSON errors
            "    errors.register_error_handlers(app)\n",
            "",
            "Do you call `errors.register_error_handlers(app)`",
        ),
        (  # test_config ignored
            "    if test_config is not None:\n        app.config.from_mapping(test_config)\n",
            "",
            "Do you call `app.config.from_mapping(test_config)`",
        ),
        (  # venues forgotten
            '    app.register_blueprint(venues.bp, url_prefix="/api/venues")\n',
            "",
            "`app.register_blueprint(venues.bp, ...)`",
        ),
        (  # no default for test_config
            "def create_app(test_config=None):",
            "def create_app(test_config):",
            "a parameter `test_config` that defaults to `None`",
        ),
    ],
)
def test_ex4_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(INIT, old, new).sweep("ex4"), expected)


# --- one wrong answer per stated requirement, each breaking that one alone ------------------

@pytest.mark.parametrize(
    ("path", "exercise", "old", "new", "expected"),
    [
        (SERVICES, "ex1", "self._next_id = 1", "self._next_id = 0", "count up from 1"),  # ids from 1
        (SERVICES, "ex1", "self._next_id += 1", "self._next_id += 2", "count up from 1"),  # ... counting up
        (SERVICES, "ex1", "capacity < 1", "capacity < 2", "a capacity of 1 is allowed"),  # an int of at least 1
        (SERVICES, "ex1", "capacity < 1", "capacity < 0", "'capacity': 0"),  # ... so not 0
        (SERVICES, "ex1", "not name.strip()", "not name", "breaks a rule"),  # a name that is not blank
        (SERVICES, "ex1", "if errors:\n", "if errors and len(errors) > 1:\n", "breaks a rule"),  # any rule broken
        (ROUTES, "ex2", 'abort(404, description=f"There is no event {event_id}.")',
         'abort(410, description=f"There is no event {event_id}.")', "answers 404"),  # 404 for EventNotFound
        (ERRORS, "ex3", 'def server_error(error):\n        if not request.path.startswith("/api/"):\n            return error\n',
         "def server_error(error):\n", "outside `/api/`, answers Flask's HTML 500 page"),  # HTML outside /api/
        (ERRORS, "ex3", '"error": "Internal Server Error"', '"error": "Server Error"', "Internal Server Error"),
        (ERRORS, "ex3", 'request.path.startswith("/api/")', 'request.path.startswith("/api")', "not part of the API"),
        (INIT, "ex4", '    app.config.from_mapping(SECRET_KEY="dev")\n', "", "sets `SECRET_KEY`"),  # step 1
        (INIT, "ex4", '    app.config.from_mapping(SECRET_KEY="dev")\n    if test_config is not None:\n'
         "        app.config.from_mapping(test_config)\n",
         "    if test_config is not None:\n        app.config.from_mapping(test_config)\n"
         '    app.config.from_mapping(SECRET_KEY="dev")\n', "the caller's settings win"),  # step 2 after 1
    ],
)
def test_each_requirement_is_checked(project, path, exercise, old, new, expected):
    """Does every stated requirement fail on its own, on every seed?"""
    assert_rejected(project(CHAPTER).edit(path, old, new).sweep(exercise), expected)

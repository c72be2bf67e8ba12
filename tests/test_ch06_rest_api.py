"""Do chapter 06's checks accept right answers and reject wrong ones? And does the reference API hold its promises?"""

import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from checkers import fresh_import
from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "06-rest-api"
SCHEMAS = "tickethub/events/schemas.py"
ERRORS = "tickethub/errors.py"
LINKS = "tickethub/links.py"
RESOURCE = "tickethub/events/resource.py"
CONDITIONAL = "tickethub/conditional.py"

# tests/test_postgres.py runs these on PostgreSQL too: (exercise, path, old, new, expected fragment)
POSTGRES_WRONG_ANSWERS = [
    ("ex2", ERRORS, '"detail": data.get("message", error.description)', '"detail": error.description',
     "the view's `abort(404, message=...)`"),
    ("ex3", LINKS, "links[\"prev\"] = link(min(page - 1, last))", "links[\"prev\"] = link(page - 1)",
     "`prev` the last page when `page` is past the end"),
    ("ex4", RESOURCE, "return paginate(services.events_query(**args), page, per_page, **args)",
     "return paginate(services.events_query(), page, per_page, **args)", "`?sort=name` gives the events"),
    ("ex5", CONDITIONAL, "request.if_match.contains(str(version))", "request.if_match.contains_weak(str(version))",
     "A weak tag never matches a write"),
]


def _app(tickethub, tmp_path, **settings):
    app = tickethub.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'api.sqlite'}",
                                "SQLALCHEMY_ENGINE_OPTIONS": {}, **settings})
    from tickethub.db import db

    with app.app_context():
        db.create_all()
    return app


def test_starters_import_and_the_factory_works(learner_package, tmp_path):
    """Does the project right after the setup cell (chapter 05's errors.py, every starter) build an app with every route?"""
    app = _app(learner_package(CHAPTER), tmp_path, TESTING=True)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/api/v1/events/", "/api/v1/events/<id:event_id>", "/api/v1/venues/", "/api/v1/openapi.json",
            "/api/v1/docs", "/api/v1/events/<id:event_id>/bookings"} <= rules
    client = app.test_client()
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/venues/99").status_code == 404


def test_every_route_and_error_is_documented_as_problem_details(learner_package, tmp_path):
    """Does the reference's OpenAPI document list every API route, and every error response as problem details?"""
    app = _app(learner_package(CHAPTER, "solution"), tmp_path)
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    for rule in app.url_map.iter_rules():
        # flask-smorest's own pages (the document, Swagger UI) and Swagger UI's files are not part of the API
        if rule.rule.startswith("/api/v1/") and not rule.endpoint.startswith(("api-docs.", "swagger-ui.")):
            path = rule.rule.replace("<id:", "<").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, (path, method)
    responses = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")) or code == "default":
                    target = responses[response["$ref"].rsplit("/", 1)[-1]]
                    assert target["content"] == {"application/problem+json": {"schema": {
                        "$ref": "#/components/schemas/Problem"}}}, (path, method, code)
    assert app.test_client().get("/api/v1/docs").status_code == 200


def test_swagger_ui_needs_no_internet(learner_package, tmp_path):
    """Does Swagger UI's page load every file it names from the app itself, none from another host?"""
    app = _app(learner_package(CHAPTER, "solution"), tmp_path)
    client = app.test_client()
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', page))  # no CDN, no other host
    files = re.findall(r'(?:src|href)="(/api/v1/docs/static/[^"]+)"', page)
    assert {f.rsplit("/", 1)[-1] for f in files} == {"swagger-ui.css", "swagger-ui-bundle.js",
                                                     "swagger-ui-standalone-preset.js"}
    for file in files:
        response = client.get(file)
        assert response.status_code == 200 and len(response.data) > 1000, file
        response.close()
    assert client.get("/api/v1/docs/static/no-such-file.js").status_code == 404


NUL_REQUESTS = [("post", "/api/v1/venues/", {"json": {"name": "Mill\x00", "city": "Leeds", "capacity": 9}}),
                ("get", "/api/v1/reports/sales", {"query_string": {"city": "Le\x00eds"}}),
                ("get", "/api/v1/venues/", {"query_string": [("city", "Leeds"), ("city", "\x00")]})]


def _nul_answers(app) -> list:
    client = app.test_client()
    return [(r.status_code, r.get_json()["errors"]) for r in
            (getattr(client, method)(url, **kwargs) for method, url, kwargs in NUL_REQUESTS)]


def test_a_venue_whose_slug_is_taken_is_a_conflict(learner_package, tmp_path):
    """Is a venue whose name gives a taken slug (chapter 04's `uq_venues_slug`) a 409 problem, not a 500?"""
    client = _app(learner_package(CHAPTER, "solution"), tmp_path, TESTING=False).test_client()
    first = client.post("/api/v1/venues/", json={"name": "Café Müller", "city": "Wuppertal", "capacity": 90})
    assert first.status_code == 201
    second = client.post("/api/v1/venues/", json={"name": "Cafe Muller", "city": "Wuppertal", "capacity": 90})
    assert second.status_code == 409 and second.mimetype == "application/problem+json"
    assert second.get_json()["status"] == 409
    assert client.get("/api/v1/venues/").get_json()["total"] == 1


def test_text_with_nul_is_refused_on_sqlite(learner_package, tmp_path):
    """Is text holding a NUL character refused with 422 (body, query, a repeated key), naming where it was sent?"""
    answers = _nul_answers(_app(learner_package(CHAPTER, "solution"), tmp_path, TESTING=False))
    assert [(status, sorted(errors)) for status, errors in answers] == [(422, ["json"]), (422, ["query"]), (422, ["query"])]


def test_text_with_nul_is_refused_on_postgresql(learner_package):
    """Is it refused on PostgreSQL too, where the database would otherwise raise (a 500)?"""
    from postgres_server import fresh_database

    tickethub = learner_package(CHAPTER, "solution")
    with fresh_database() as url:
        app = tickethub.create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": False})
        from tickethub.db import db

        with app.app_context():
            db.create_all()
        try:
            assert [status for status, _ in _nul_answers(app)] == [422, 422, 422]
        finally:
            with app.app_context():
                db.engine.dispose()


def _checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                                   response_schema_conformance, status_code_conformance)

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
            response_schema_conformance]


@pytest.mark.filterwarnings("ignore")  # hypothesis and schemathesis warn about the settings they are given
def test_schemathesis_finds_no_server_error_and_no_broken_promise(learner_package, tmp_path):
    """Over every operation of the reference's document, with generated requests (fixed examples: derandomized), is
    every answer documented, of the declared media type, matching its schema, and never a 5xx?"""
    import schemathesis

    app = _app(learner_package(CHAPTER, "solution"), tmp_path, TESTING=False)  # a bug: a 500 answer, counted
    client = app.test_client()
    client.post("/api/v1/venues/", json={"name": "Riverside Hall", "city": "Leeds", "capacity": 800})
    client.post("/api/v1/events/", json={"name": "Jazz Night", "capacity": 100, "venue_id": 1})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    checks, failures, operations = _checks(), [], 0
    for found in schema.get_all_operations():
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=25, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def conforms(case):
            case.call_and_validate(checks=checks)

        try:
            conforms()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 — what schemathesis found
            failures.append(f"{operation.label}: {error}")
    assert operations == 14
    assert not failures, "\n\n".join(failures)


@pytest.mark.filterwarnings("ignore")
def test_schemathesis_catches_a_server_error(learner_package, tmp_path):
    """Is the property run able to fail: does it find the 500 of ids without a bound (the `int` converter)?"""
    import schemathesis

    learner_package(CHAPTER, "solution")
    api = tmp_path / f"package-{CHAPTER}-solution" / "tickethub" / "api.py"
    text = api.read_text()
    for bound in ("super().__init__(map, min=1, max=MAX_INT)", '"minimum": 1, "maximum": MAX_INT}'):
        assert bound in text
        text = text.replace(bound, bound.replace(", max=MAX_INT", "").replace(', "maximum": MAX_INT', ""))
    api.write_text(text)  # ids without an upper bound, as `<int:...>` has them
    app = _app(fresh_import("tickethub"), tmp_path, TESTING=False)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema["/api/v1/venues/{venue_id}"]["GET"]

    @given(case=operation.as_strategy())
    @settings(max_examples=150, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def conforms(case):
        case.call_and_validate(checks=_checks())

    # an id past SQLite's 2**63 - 1 (the 79th example of this fixed sequence): a 500, or the exception itself
    with pytest.raises((Exception, BaseExceptionGroup), match="OverflowError|Server error|too large"):
        conforms()


# --- exercise 1: schemas -------------------------------------------------------------------------------

IN_VENUE = "    venue_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_INT))\n"
VALIDATES = '''
    @ma.validates("name")
    def _not_blank(self, value, **kwargs):
        if not value.strip():
            raise ma.ValidationError("Not only spaces.")
'''


def test_schemas_alternative_passes(project):
    """Are other spellings accepted: `fields.Int`, a `@validates` method for blank names, a sort list written out?"""
    p = project(CHAPTER)
    p.edit(SCHEMAS, '''    name = fields.String(required=True, validate=[
        validate.Length(min=1, max=200),
        validate.Regexp(r"\\s*\\S", error="Give the event a name that is not only spaces."),
    ])''', '''    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))''')
    p.edit(SCHEMAS, IN_VENUE, '''    venue_id = fields.Int(strict=True, allow_none=True, validate=[validate.Range(min=1), validate.Range(max=MAX_INT)])
''' + VALIDATES)
    p.edit(SCHEMAS, 'validate=validate.OneOf([*SORTS, *(f"-{name}" for name in SORTS)])',
           'validate=validate.OneOf(["id", "-id", "name", "-name", "seats_left", "-seats_left"])')
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("id = fields.Integer(dump_only=True)", "id = fields.Integer()", "Is `id` declared with `dump_only=True`?"),
        ("seats_left = fields.Integer(dump_only=True)", "seats_left = fields.Integer()",
         "Is `seats_left` declared with `dump_only=True`?"),
        ("    venue_id = fields.Integer(allow_none=True)\n", "    venue_id = fields.Integer(allow_none=True)\n"
         "    version = fields.Integer()\n", "exactly those five fields"),
        ("    venue_id = fields.Integer(allow_none=True)\n", "", "exactly those five fields"),
        ("name = fields.String(required=True, validate=[", "name = fields.String(validate=[",
         "naming `capacity`, `name` only"),
        ("validate.Length(min=1, max=200)", "validate.Length(min=1)", "NAME_HINT"),
        ('        validate.Regexp(r"\\s*\\S", error="Give the event a name that is not only spaces."),\n', "", "NAME_HINT"),
        ("capacity = fields.Integer(required=True, strict=True,", "capacity = fields.Integer(required=True,",
         "Without `strict=True`"),
        ("validate=validate.Range(min=1, max=MAX_INT))\n    venue_id", "validate=validate.Range(min=0, max=MAX_INT))\n"
         "    venue_id", "Without `strict=True`"),
        ("validate=validate.Range(min=1, max=MAX_INT))\n    venue_id", "validate=validate.Range(min=1))\n    venue_id",
         "Without `strict=True`"),
        ("venue_id = fields.Integer(strict=True, allow_none=True,", "venue_id = fields.Integer(strict=True,", "VENUE_HINT"),
        ("venue_id = fields.Integer(strict=True, allow_none=True,", "venue_id = fields.Integer(allow_none=True,",
         "VENUE_HINT"),
        ("venue_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_INT))",
         "venue_id = fields.Integer(strict=True, allow_none=True)", "VENUE_HINT"),
        (IN_VENUE, IN_VENUE + "\n    class Meta:\n        unknown = ma.EXCLUDE\n", "keep marshmallow's default `unknown = RAISE`"),
        ('sort = fields.String(load_default="id",', "sort = fields.String(", "Does `sort` have `load_default=\"id\"`"),
        ('validate.OneOf([*SORTS, *(f"-{name}" for name in SORTS)])', "validate.OneOf(SORTS)", "also with a `-`"),
        ('sort = fields.String(load_default="id", validate=validate.OneOf([*SORTS, *(f"-{name}" for name in SORTS)]))',
         'sort = fields.String(load_default="id")', "Is `sort` validated with `validate.OneOf([...])`"),
        ("venue_id = fields.Integer(validate=validate.Range(min=1, max=MAX_INT))",
         "venue_id = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_INT))", "a query string is text"),
        ("venue_id = fields.Integer(validate=validate.Range(min=1, max=MAX_INT))", "venue_id = fields.Integer()",
         "Is `venue_id` `fields.Integer(validate=validate.Range(min=1, max=MAX_INT))`?"),
    ],
    ids=["id-loadable", "seats-loadable", "extra-field", "no-venue", "name-optional", "name-long", "name-blank",
         "capacity-loose", "capacity-zero", "capacity-unbounded", "venue-not-null", "venue-loose", "venue-unbounded",
         "unknown-excluded", "sort-no-default", "sort-no-minus", "sort-anything", "filter-strict", "filter-unbounded"],
)
def test_wrong_schemas_fail(project, old, new, expected):
    from checkers.chapters import ch06_rest_api as ch

    expected = {"NAME_HINT": ch.NAME_HINT, "VENUE_HINT": ch.VENUE_HINT}.get(expected, expected)
    assert_rejected(project(CHAPTER).edit(SCHEMAS, old, new).sweep("ex1"), expected)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("class OverviewSchema(ma.Schema):", "EventListArgs = None\n\n\nclass OverviewSchema(ma.Schema):", "a class `EventListArgs`"),
        (IN_VENUE, IN_VENUE + '\n    @ma.validates("name")\n    def _check(self, value, **kwargs):\n        return value + 1\n',
         "TypeError"),
        ("SORTS = (", "SORTS = undefined_name + (", "NameError"),
    ],
    ids=["not-a-class", "validator-raises", "import-fails"],
)
def test_broken_schemas_are_reported(project, old, new, expected):
    """Does a schema file that is not what the exercise asks (no class, a validator that crashes, a file that does not
    import) get a clear FAIL or ERROR, never a crash of the check?"""
    assert_rejected(project(CHAPTER).edit(SCHEMAS, old, new).check("ex1"), expected)


# --- exercise 2: problem details ----------------------------------------------------------------------------

PROBLEM_BODY = '''    data = getattr(error, "data", None) or {}  # what flask-smorest's abort() and webargs attach
    details = {
        "type": "about:blank",  # no page of our own explains it: the status says what it is
        "title": error.name,
        "status": error.code,
        "detail": data.get("message", error.description),
    }
    errors = data.get("errors", data.get("messages"))
    if errors:
        details["errors"] = errors
    return details
'''
ALTERNATIVE_PROBLEM = '''    from http import HTTPStatus

    data = error.data if isinstance(getattr(error, "data", None), dict) else {}
    found = {"type": "about:blank", "title": HTTPStatus(error.code).phrase, "status": int(error.code),
             "detail": data["message"] if "message" in data else error.description}
    for key in ("errors", "messages"):
        if data.get(key):
            found["errors"] = data[key]
            break
    return found
'''


def test_problem_alternative_passes(project):
    """Is a problem built another way (the standard phrase as its title, a loop over the keys) accepted?"""
    assert_outcome(project(CHAPTER).edit(ERRORS, PROBLEM_BODY, ALTERNATIVE_PROBLEM).check("ex2"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"type": "about:blank",', '"type": "https://tickethub.example/problem",', "Is `type` the text `about:blank`?"),
        ('"title": error.name,', '"title": str(error.code),', "Is `title` `error.name`?"),
        ('"status": error.code,', '"status": str(error.code),', "Is `status` `error.code` (an `int`)?"),
        ('"detail": data.get("message", error.description),', '"detail": error.description,', "message=...)`"),
        ('"detail": data.get("message", error.description),', '"detail": data.get("message", ""),', "DETAIL_HINT"),
        ("    if errors:\n        details[\"errors\"] = errors\n", "    details[\"errors\"] = errors\n", "ERRORS_HINT"),
        ('errors = data.get("errors", data.get("messages"))', 'errors = data.get("messages")', "ERRORS_HINT"),
        ('errors = data.get("errors", data.get("messages"))', 'errors = data.get("errors")', "ERRORS_HINT"),
        ('"status": error.code,', '"status": error.code, "code": error.code,', "Are the keys `type`, `title`"),
        ("    return details\n", "    return [details]\n", "Does `problem()` return a `dict`?"),
        ('    data = getattr(error, "data", None) or {}', "    data = error.data", "AttributeError"),
    ],
    ids=["type", "title", "status-text", "no-message", "no-description", "errors-always", "messages-only",
         "errors-only", "extra-key", "a-list", "no-data"],
)
def test_wrong_problems_fail(project, old, new, expected):
    from checkers.chapters import ch06_rest_api as ch

    expected = {"DETAIL_HINT": ch.DETAIL_HINT, "ERRORS_HINT": ch.ERRORS_HINT}.get(expected, expected)
    assert_rejected(project(CHAPTER).edit(ERRORS, old, new).sweep("ex2"), expected)


def test_chapter_05_errors_are_not_problem_details(project):
    """Does chapter 05's errors.py, with a `problem()` added so the names exist, fail for its media type?"""
    p = project(CHAPTER)
    start = p.read(ERRORS).split("\n\ndef problem(")[0].replace(
        "response.content_type = PROBLEM", "response.content_type = \"application/json\"")
    p.write(ERRORS, start + "\n\ndef problem(error):\n" + PROBLEM_BODY)
    assert_rejected(p.check("ex2"), "`Content-Type: application/problem+json`")


# --- exercise 3: links ------------------------------------------------------------------------------------

def test_links_alternative_passes(project):
    """Are links built another way (a dict of page numbers, then one `url_for` each) accepted?"""
    p = project(CHAPTER).edit(LINKS, '''    def link(number):''', '''    numbers = {"self": page, "first": 1, "last": max(pages, 1)}
    if 1 < page:
        numbers["prev"] = min(page - 1, numbers["last"])
    if page + 1 <= pages:
        numbers["next"] = page + 1
    arguments = {**request.view_args, **query, "per_page": per_page}
    return {name: url_for(request.endpoint, page=n, **arguments) for name, n in numbers.items()}

    def link(number):''')
    assert_outcome(p.check("ex3"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('links["prev"] = link(min(page - 1, last))', 'links["prev"] = link(page - 1)', "past the end"),
        ("last = max(pages, 1)", "last = pages", "Is `last` page 1 when the list is empty"),
        ("    if page > 1:\n", "    if page >= 1:\n", "Is there a `prev` only when `page > 1`"),
        ("    if page < pages:\n", "    if page <= pages:\n", "Is there a `prev` only when `page > 1`"),
        ("**request.view_args, **query, page=number", "**request.view_args, page=number", "LINK_HINT"),
        ("**request.view_args, **query, page=number", "**query, page=number", "BuildError"),
        (", per_page=per_page)\n", ")\n", "LINK_HINT"),
        ('links = {"self": link(page), "first": link(1), "last": link(last)}',
         'links = {"self": link(page), "first": link(1)}', "`self`, `first` and `last` are always there"),
        ('"self": link(page)', '"self": link(1)', "LINK_HINT"),
    ],
    ids=["prev-past-end", "empty-last", "prev-on-first", "next-on-last", "filter-lost", "path-lost", "size-lost",
         "no-last", "self-first"],
)
def test_wrong_links_fail(project, old, new, expected):
    from checkers.chapters import ch06_rest_api as ch

    expected = {"LINK_HINT": ch.LINK_HINT}.get(expected, expected)
    assert_rejected(project(CHAPTER).edit(LINKS, old, new).sweep("ex3"), expected)


def test_links_that_are_not_a_dict_fail(project):
    """Does `page_links` returning a list of URLs get a clear FAIL?"""
    p = project(CHAPTER).edit(LINKS, "    return links\n", "    return list(links.values())\n")
    assert_rejected(p.check("ex3"), "no links")


# --- exercise 4: the events resource -------------------------------------------------------------------------

def test_resource_alternative_passes(project):
    """Is a resource written another way accepted: filters picked by name, `(body, headers)` with the decorator's 201?"""
    p = project(CHAPTER)
    p.edit(RESOURCE, '''        page, per_page = args.pop("page"), args.pop("per_page")
        return paginate(services.events_query(**args), page, per_page, **args)''', '''        filters = {name: value for name, value in args.items() if name not in ("page", "per_page")}
        return paginate(services.events_query(**filters), args["page"], args["per_page"], **filters)''')
    p.edit(RESOURCE, '''        return event, 201, {"Location": url_for(".EventById", event_id=event.id),
                            "ETag": conditional.etag(event.version)}''', '''        headers = {"ETag": conditional.etag(event.version)}
        headers["Location"] = url_for("events.EventById", event_id=event.id)
        return event, headers''')
    assert_outcome(p.check("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("@bp.response(201, EventSchema)", "@bp.response(200, EventSchema)", "documents its 201"),
        ('return event, 201, {"Location": url_for(".EventById", event_id=event.id),',
         'return event, 201, {"Location": url_for(".Events"),', "`Location: /api/v1/events/"),
        ('                            "ETag": conditional.etag(event.version)}', "                            }",
         "Does the 201 carry"),
        ("        except InvalidEvent as error:\n            invalid(error)\n        return event, 201",
         "        except InvalidEvent as error:\n            return {}, 400\n        return event, 201", "answers 422"),
        ("    @bp.arguments(EventInSchema)\n", "", "Does each method have its `@bp.arguments(...)` decorator?"),
        ("services.events_query(**args)", "services.events_query()", "`?sort=name` gives the events"),
        ("services.events_query(**args)", 'services.events_query(sort=args["sort"])', "`?venue_id="),
        ("return paginate(services.events_query(**args), page, per_page, **args)",
         "return paginate(services.events_query(**args), 1, 100, **args)", "Do you pass `page` and `per_page`"),
        ('        return event, 200, {"ETag": conditional.etag(event.version)}\n\n    @bp.response(204)',
         '        return event, 200\n\n    @bp.response(204)', "`ETag: \"2\"`: the version after"),
        ("            event = services.update_event(event_id, data)\n        except InvalidEvent as error:\n"
         "            invalid(error)\n        return event, 200",
         "            event = services.update_event(event_id, data)\n        except InvalidEvent as error:\n"
         "            return {}, 200\n        return event, 200", "the 6 seats booked answers 422"),
        ("        conditional.check_if_match(find_event(event_id).version)\n        try:",
         "        try:", "with `find_event(event_id)` first?"),
        ("    @bp.response(204)\n", "    @bp.response(200)\n", "answers 204, with no body"),
        ("        services.delete_event(event_id)\n", "", "the event deleted"),
        ("        conditional.check_if_match(find_event(event_id).version)\n        services.delete_event(event_id)",
         "        services.delete_event(event_id)", "with `find_event(event_id)` first?"),
        ('    @bp.alt_response(412, response="PRECONDITION_FAILED")\n    @bp.alt_response(415',
         "    @bp.alt_response(415", "documents 404, 412, 415, 422"),
        ('    @bp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")\n    def post', "    def post", "documents 415, 422"),
        ('@bp.alt_response(412, response="PRECONDITION_FAILED")\n    def delete',
         '@bp.alt_response(412, response="PRECONDITION FAILED")\n    def delete', "the documented error response"),
    ],
    ids=["post-200", "location-list", "no-etag", "invalid-400", "post-unvalidated", "sort-ignored", "filter-ignored",
         "page-ignored", "patch-no-etag", "patch-invalid-200", "patch-no-404", "delete-200",
         "delete-nothing", "delete-no-404", "patch-412-undocumented", "post-415-undocumented", "misnamed-response"],
)
def test_wrong_resources_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(RESOURCE, old, new).sweep("ex4"), expected)


def test_a_resource_without_methods_fails_clearly(project):
    """Does an `EventById` with `patch` and `delete` deleted get a FAIL that says so, never a crash?"""
    text = project(CHAPTER).read(RESOURCE)
    p = project(CHAPTER).write(RESOURCE, text[:text.index("    @bp.arguments(EventPatchSchema")])
    assert_rejected(p.check("ex4"), "PATCH")


# --- exercise 5: conditional requests -------------------------------------------------------------------------

def test_conditional_alternative_passes(project):
    """Is a hand-written comparison accepted (the header split at commas, quotes and `W/` stripped)?"""
    p = project(CHAPTER)
    p.edit(CONDITIONAL, "    return request.if_none_match.contains_weak(str(version))\n",
           '''    header = request.headers.get("If-None-Match", "")
    tags = [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()]
    return "*" in tags or str(version) in tags
''')
    assert_outcome(p.check("ex5"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("request.if_none_match.contains_weak(str(version))", "request.if_none_match.contains(str(version))",
         "Do you compare weakly"),
        ("request.if_none_match.contains_weak(str(version))", "request.if_none_match.contains_weak(str(version + 1))",
         "Do you compare weakly"),
        ("request.if_none_match.contains_weak(str(version))", "bool(request.if_none_match)", "Do you compare weakly"),
        ("request.if_match.contains(str(version))", "request.if_match.contains_weak(str(version))",
         "A weak tag never matches a write"),
        ("abort(412,", "abort(409,", "it aborted with 409"),
        ("request.if_match.contains(str(version))", "request.if_match.contains(f'\"{version}\"')", "aborted with 412"),
    ],
    ids=["fresh-strong", "fresh-other", "fresh-any", "match-weak", "match-409", "match-quoted"],
)
def test_wrong_conditionals_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(CONDITIONAL, old, new).sweep("ex5"), expected)


def test_a_required_if_match_fails(project):
    """Does a `check_if_match` that refuses a write without `If-Match` fail, where it shows: the `PATCH` of exercise 4?"""
    p = project(CHAPTER).edit(CONDITIONAL, "if request.if_match and not request.if_match.contains(str(version)):",
                              "if not request.if_match.contains(str(version)):")
    assert_rejected(p.sweep("ex4"), "answered 412")
    assert_rejected(p.check("ex5"), "Fix exercise 4 first")


def test_a_resource_that_skips_the_precondition_fails(project):
    """Does a `PATCH` that never calls `check_if_match` (exercise 4's file) fail exercise 5?"""
    p = project(CHAPTER).edit(RESOURCE, "        conditional.check_if_match(find_event(event_id).version)\n        try:",
                              "        find_event(event_id)\n        try:")
    assert_rejected(p.sweep("ex5"), "answers 412")


def test_fresh_that_raises_is_the_learners_error(project):
    """Does a `fresh` that raises (when the header is there) show the learner's exception and line?"""
    p = project(CHAPTER).edit(CONDITIONAL, "    return request.if_none_match.contains_weak(str(version))\n",
                              "    return bool(request.if_none_match) and request.if_none_match.contains_weak(version.upper())\n")
    assert_rejected(p.check("ex5"), "conditional.py")


# --- exercise 6: a regression test for lost updates ----------------------------------------------------------

PRECONDITION_TESTS = "tests/test_event_preconditions.py"
STALE, CURRENT = "test_a_stale_if_match_is_refused_and_changes_nothing", "test_a_current_if_match_succeeds"
MADE_STALE = '''    url = add_event(client)
    stale = client.get(url).headers["ETag"]
    client.patch(url, json={"capacity": 80})
    before = client.get(url).get_json()
    response = client.patch(url, json={"name": "Lost Update", "capacity": 120}, headers={"If-Match": stale})
'''
REFUSED = "    assert response.status_code == 412\n"
UNCHANGED = "    assert client.get(url).get_json() == before\n"
READ_CURRENT = '''    url = add_event(client)
    current = client.get(url).headers["ETag"]
    response = client.patch(url, json={"capacity": 80}, headers={"If-Match": current})
'''
SUCCEEDS = "    assert response.status_code == 200\n"


def _body(text: str, function: str, body: str) -> str:
    """`text` with the body of `function` (after its docstring, if any) replaced by `body`."""
    start = text.index("\n", text.index(f"def {function}(")) + 1
    if text[start:].lstrip().startswith('"""'):
        start = text.index('"""\n', text.index('"""', start) + 3) + 4
    end = text.find("\n\n\n", start)
    end = len(text) if end == -1 else end + 1
    return text[:start] + body + text[end:]


def _precondition_tests(project, stale: str | None = None, current: str | None = None, extra: str = ""):
    """Chapter 06's project with the reference test module, one test's body (or both) replaced."""
    p = project(CHAPTER)
    text = p.read(PRECONDITION_TESTS)
    if stale is not None:
        text = _body(text, STALE, stale)
    if current is not None:
        text = _body(text, CURRENT, current)
    return p.write(PRECONDITION_TESTS, text + extra)


def test_the_reference_precondition_tests_pass_on_every_seed(project):
    """Does the reference test module pass the check whatever the seed?"""
    assert_outcome(_precondition_tests(project).sweep("ex6"), Outcome.PASS)


CLASS_BASED = '''

class TestEditsOfAnEvent:
    def test_stale_and_current_tags(self, client):
        created = client.post("/api/v1/events/", json={"name": "Folk Night", "capacity": 50})
        url, first = created.headers["Location"], created.headers["ETag"]
        second = client.patch(url, json={"name": "Folk Night II"}, headers={"If-Match": first})
        assert second.status_code == 200
        assert client.patch(url, json={"name": "Lost"}, headers={"If-Match": first}).status_code == 412
        assert client.get(url).get_json()["name"] == "Folk Night II"
'''
PARAMETRIZED = '''

@pytest.mark.parametrize("change", [{"name": "Renamed"}, {"capacity": 7}, {"name": "Both", "capacity": 9}])
def test_any_stale_change_is_refused(client, change):
    url = add_event(client)
    stale = client.get(url).headers["ETag"]
    assert client.patch(url, json={"capacity": 60}).status_code == 200
    before = client.get(url)
    response = client.patch(url, json=change, headers={"If-Match": stale})
    assert response.status_code == 412
    assert client.get(url).get_json() == before.get_json()
    assert client.get(url).headers["ETag"] == before.headers["ETag"]
'''


@pytest.mark.parametrize(("stale", "current", "extra"), [
    # the tag from the POST's own ETag; the fresh PATCH asserted in the same test; the name compared, not all of it
    ('''    created = client.post("/api/v1/events/", json={"name": "Opera", "capacity": 40})
    url, old = created.headers["Location"], created.headers["ETag"]
    assert client.patch(url, json={"name": "Opera Gala"}, headers={"If-Match": old}).status_code == 200
    response = client.patch(url, json={"name": "Lost"}, headers={"If-Match": old})
    assert response.status_code == 412
    assert client.get(url).get_json()["name"] == "Opera Gala"
''', "    pass\n", ""),
    (None, None, CLASS_BASED),  # a test class beside the two tests
    ("    pass\n", "    pass\n", PARAMETRIZED + "\n\ndef test_current(client):\n" + READ_CURRENT + SUCCEEDS),
], ids=["one-test", "class", "parametrized"])
def test_precondition_test_alternatives_pass(project, stale, current, extra):
    """Do tests written another way, that assert what the exercise asks, pass?"""
    assert_outcome(_precondition_tests(project, stale, current, extra).check("ex6"), Outcome.PASS)


@pytest.mark.parametrize(("stale", "current", "expected"), [
    # read the event's ETag: a tag written by hand fails where ETags look different
    (MADE_STALE.replace('stale = client.get(url).headers["ETag"]', "stale = '\"1\"'") + REFUSED + UNCHANGED, None,
     "the ETags count from 0"),
    (None, READ_CURRENT.replace('current = client.get(url).headers["ETag"]', "current = '\"1\"'") + SUCCEEDS,
     "Does your test write a tag by hand"),
    # let someone else change the event, so the tag is stale: a made-up tag misses edits that never change the tag
    (MADE_STALE.replace('client.get(url).headers["ETag"]', "'\"999\"'") + REFUSED + UNCHANGED, None,
     "edits no longer change the event's version"),
    # ... stale: a current tag with 412 expected fails on the reference
    (MADE_STALE.replace('    client.patch(url, json={"capacity": 80})\n', "") + REFUSED + UNCHANGED, None,
     f"`{STALE}` failed"),
    # fails unless that answer is 412: any error will not do
    (MADE_STALE + "    assert response.status_code >= 400\n" + UNCHANGED, None, "answered 409 Conflict instead of 412"),
    (MADE_STALE + "    assert response.status_code in (409, 412, 428)\n" + UNCHANGED, None, "answered 409"),
    (MADE_STALE + "    assert response.status_code != 200\n" + UNCHANGED, None, "answered 409"),
    # ... and fails when the refused PATCH changed the event
    (MADE_STALE + REFUSED, None, "checks `If-Match` afterwards"),
    # ... compared before and after it: "before" read before someone else's edit fails on the reference
    (MADE_STALE.replace('    before = client.get(url).get_json()\n', "").replace(
        '    stale = client.get(url).headers["ETag"]\n', '    first = client.get(url)\n    stale = first.headers["ETag"]\n'
        '    before = first.get_json()\n') + REFUSED + UNCHANGED, None, f"`{STALE}` failed"),
    # a PATCH with the current tag succeeds: a test without it lets "every If-Match refused" through
    (None, "    pass\n", "the one with the current tag too"),
    (None, READ_CURRENT + "    assert response.status_code in (200, 412)\n", "the one with the current tag too"),
    # ... the current tag: a stale one in the "succeeds" test fails on the reference
    (None, READ_CURRENT.replace('    response = ', '    client.patch(url, json={"name": "Other"})\n    response = ')
     + SUCCEEDS, f"`{CURRENT}` failed"),
    # a test that skips itself checks nothing
    ("    pytest.skip('later')\n", "    pytest.skip('later')\n", "was skipped"),
], ids=["hand-written-stale", "hand-written-current", "made-up-stale", "not-stale", "any-error", "409-or-428",
        "not-200", "no-compare", "compare-too-early", "no-current", "current-or-412", "current-is-stale", "skips"])
def test_wrong_precondition_tests_fail(project, stale, current, expected):
    """Is a test that misses one requirement of the exercise rejected, saying which?"""
    assert_rejected(_precondition_tests(project, stale, current).check("ex6"), expected)


@pytest.mark.parametrize(("text", "outcome", "expected"), [
    ("def test_edit(:\n    pass\n", Outcome.ERROR, f"{PRECONDITION_TESTS}, line 1"),
    ("from tickethub.conditional import if_match\n\n\ndef test_edit():\n    pass\n", Outcome.FAIL,
     "cannot import name 'if_match'"),
    ("def edits_are_safe():\n    assert True\n", Outcome.FAIL, "it defines no test function"),
    ("def test_edit():\n    while True:\n        pass\n", Outcome.TIMEOUT, f"{PRECONDITION_TESTS}, line 2, in test_edit"),
], ids=["syntax-error", "bad-import", "no-test", "endless-loop"])
def test_bad_precondition_test_modules_are_reported(project, text, outcome, expected):
    """Is a module that is not Python, imports what is not there, holds no test, or loops reported as such?"""
    assert_outcome(project(CHAPTER).write(PRECONDITION_TESTS, text).check("ex6"), outcome, expected)

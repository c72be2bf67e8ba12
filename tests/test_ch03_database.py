"""Do chapter 03's checks accept right answers and reject wrong ones? And do `dbkit`'s helpers answer as documented?"""
import datetime
import decimal
import sys
import types

import pytest

from checkers.chapters import dbkit
from checkers.engine import sandbox
from checkers.engine.outcomes import Outcome, Result
from checkers.notebook.api import Chapter
from conftest import assert_outcome, assert_rejected

CHAPTER = "03-database"
MODELS = "tickethub/models.py"
EVENTS = "tickethub/events/services.py"
PAGINATION = "tickethub/pagination.py"
VENUES = "tickethub/venues/services.py"
BOOKINGS = "tickethub/bookings/services.py"
CONFIG = "tickethub/config.py"

def test_starters_import_and_the_factory_works(learner_package):
    """Does the learner's project, before any exercise is solved, import and build an app?"""
    app = learner_package(CHAPTER).create_app({"TESTING": True})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///tickethub.sqlite"


# --- exercise 1: models ------------------------------------------------------------------------

MODELS_ALTERNATIVE = '''
"""TicketHub's data, written in another style."""
from typing import List, Optional

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import db


class Venue(db.Model):
    __tablename__ = "venues"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    city: Mapped[str] = mapped_column(String(80))
    capacity: Mapped[int] = mapped_column(Integer)
    events: Mapped[List["Event"]] = relationship("Event", back_populates="venue")


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (CheckConstraint("seats_left >= 0", name="no_overbooking"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int]
    seats_left: Mapped[int]
    venue_id: Mapped[Optional[int]] = mapped_column(ForeignKey("venues.id"), index=True)
    venue: Mapped[Optional["Venue"]] = relationship(back_populates="events")
    # the database deletes the bookings (ON DELETE CASCADE); SQLAlchemy need not load them
    bookings: Mapped[List["Booking"]] = relationship(back_populates="event", passive_deletes=True)


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (UniqueConstraint("email", "event_id", name="one_booking_per_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    seats: Mapped[int]
    event: Mapped["Event"] = relationship(back_populates="bookings")
'''


def test_models_alternative_passes(project):
    """Are `Optional`/`List`, table-level unique constraints and `ON DELETE CASCADE` accepted?"""
    assert_outcome(project(CHAPTER).write(MODELS, MODELS_ALTERNATIVE).check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # the email unique on its own: one booking per person, ever
            '    __table_args__ = (UniqueConstraint("event_id", "email"),)\n',
            "",
            "Did you add `__table_args__ = (UniqueConstraint",
        ),
        (
            '    email: Mapped[str] = mapped_column(String(254))\n',
            '    email: Mapped[str] = mapped_column(String(254), unique=True)\n',
            "Only the pair",
        ),
        (  # an event must have a venue
            "    venue_id: Mapped[int | None]",
            "    venue_id: Mapped[int]",
            "`Event.venue_id` is optional (may be NULL)",
        ),
        ("String(120)", "String(100)", "`Venue.name` is `String(120)`"),
        (  # no cascade: deleting an event tries to keep its bookings
            ', cascade="all, delete-orphan"',
            "",
            'cascade=\\"all, delete-orphan\\"',
        ),
        (
            '    __table_args__ = (CheckConstraint("seats_left >= 0", name="seats_left_not_negative"),)\n',
            "",
            "the database stored -1",
        ),
        (  # one side of the pair does not know the other
            '    venue: Mapped[Venue | None] = relationship(back_populates="events")',
            "    venue: Mapped[Venue | None] = relationship()",
            "Does each side of a pair name the other in `back_populates`?",
        ),
        ("    seats_left: Mapped[int]\n", "", "a column `Event.seats_left`"),
        (  # a sold-out event (0 seats left) refused too
            'CheckConstraint("seats_left >= 0"', 'CheckConstraint("seats_left > 0"',
            "Is the constraint `seats_left >= 0` (not `> 0`)?",
        ),
        (  # SQL that the database cannot create: a FAIL that says so, not a fault of the check
            'CheckConstraint("seats_left >= 0"', 'CheckConstraint("seats_left >>= 0"',
            "SQLAlchemy creates the tables of your models",
        ),
        (  # a relationship to a model that does not exist: the mappers cannot be set up
            'relationship(back_populates="bookings")', 'relationship("Evnt", back_populates="bookings")',
            "expression 'Evnt' failed to locate a name",
        ),
        (  # paired from one side only: appending to `venue.events` leaves `event.venue` empty
            '    events: Mapped[list["Event"]] = relationship(back_populates="venue")',
            '    events: Mapped[list["Event"]] = relationship()',
            "appending an event to `venue.events` sets its `venue`",
        ),
    ],
)
def test_wrong_models_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MODELS, old, new).check("ex1"), expected.replace('\\"', '"'))


# --- exercise 2: the event service ---------------------------------------------------------------


def _events_alternative(project):
    text = project.read(EVENTS)
    head = text[: text.index("def events_query")]
    return head + '''
def events_query():
    """Every event, oldest first."""
    return db.select(Event).order_by(Event.id.asc())


def get_event(event_id):
    event = db.session.execute(db.select(Event).where(Event.id == event_id)).scalar_one_or_none()
    if not event:
        raise EventNotFound(event_id)
    return event


def create_event(data):
    fields = validate_event(data)
    event = Event(
        name=fields["name"],
        capacity=fields["capacity"],
        seats_left=fields["capacity"],
        venue_id=fields.get("venue_id"),
    )
    db.session.add(event)
    db.session.commit()
    return event


def update_event(event_id, data):
    fields = validate_event(data, partial=True)
    event = get_event(event_id)
    booked = event.capacity - event.seats_left
    capacity = fields.get("capacity", event.capacity)
    if capacity < booked:
        raise InvalidEvent({"capacity": f"at least {booked}"})
    event.name = fields.get("name", event.name)
    event.venue_id = fields.get("venue_id", event.venue_id)
    event.capacity, event.seats_left = capacity, capacity - booked
    db.session.commit()
    return event


def delete_event(event_id):
    event = get_event(event_id)
    db.session.delete(event)
    db.session.commit()
'''


def test_events_alternative_passes(project):
    """Are `scalar_one_or_none()`, explicit fields and a different update accepted?"""
    p = project(CHAPTER)
    assert_outcome(p.write(EVENTS, _events_alternative(p)).check("ex2"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # added, never saved
            "    db.session.add(event)\n    db.session.commit()\n",
            "    db.session.add(event)\n    db.session.flush()\n",
            "Did you `db.session.add(event)` and then `db.session.commit()`?",
        ),
        (
            'event = Event(seats_left=fields["capacity"], **fields)',
            "event = Event(seats_left=0, **fields)",
            "Does a new event start with `seats_left` equal to its `capacity`?",
        ),
        (  # forgets the seats already booked
            'event.seats_left = fields["capacity"] - booked',
            'event.seats_left = fields["capacity"]',
            "Booked seats are `capacity - seats_left`",
        ),
        (
            "return db.select(Event).order_by(Event.id)",
            "return db.select(Event)",
            "Did you add `.order_by(Event.id)`?",
        ),
        (  # runs the query instead of returning it
            "return db.select(Event).order_by(Event.id)",
            "return db.session.execute(db.select(Event).order_by(Event.id)).scalars().all()",
            "`events_query()` returns a statement",
        ),
        (
            "    db.session.delete(get_event(event_id))\n    db.session.commit()\n",
            "    db.session.delete(get_event(event_id))\n",
            "Did you `db.session.delete(event)` and then `db.session.commit()`?",
        ),
        (  # works, but legacy
            "    event = db.session.get(Event, event_id)\n    if event is None:",
            "    event = Event.query.get(event_id)\n    if event is None:",
            "`Event.query` in `tickethub/events/services.py`",
        ),
        (  # refuses a capacity of exactly the seats booked (which leaves 0 seats)
            'if fields["capacity"] < booked:', 'if fields["capacity"] <= booked:',
            "do you refuse only a capacity *below* the seats booked?",
        ),
        (  # the venue is never changed
            "        setattr(event, name, value)\n", "        if name != \"venue_id\":\n            setattr(event, name, value)\n",
            "Do you set every field that was sent?",
        ),
        (  # changes the event, returns nothing
            "        setattr(event, name, value)\n    db.session.commit()\n    return event\n",
            "        setattr(event, name, value)\n    db.session.commit()\n",
            "Do you `return event` at the end?",
        ),
    ],
)
def test_wrong_event_services_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(EVENTS, old, new).check("ex2"), expected)


def test_events_need_the_models_of_exercise_1(project):
    """Does a missing model column point back to exercise 1 rather than fail obscurely?"""
    p = project(CHAPTER).edit(MODELS, "    seats_left: Mapped[int]\n", "")
    assert_outcome(p.check("ex2"), Outcome.FAIL, "`Event.seats_left` from exercise 1", "ex1.check()")


# --- exercise 3: pagination ----------------------------------------------------------------------

PAGINATION_ALTERNATIVE = '''
"""Pagination by hand: LIMIT, OFFSET and a count."""
import math

from flask import abort, request
from sqlalchemy import func

from .db import db

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


def paginate(statement, serialize):
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        abort(400)
    if page < 1 or per_page < 1:
        abort(400)
    per_page = min(per_page, MAX_PER_PAGE)
    total = db.session.execute(
        db.select(func.count()).select_from(statement.order_by(None).subquery())
    ).scalar_one()
    items = db.session.execute(statement.limit(per_page).offset((page - 1) * per_page)).scalars()
    return {
        "items": [serialize(item) for item in items],
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page),
    }


def _whole_number(name, default):
    raise NotImplementedError("not needed")
'''


def test_pagination_alternative_passes(project):
    """Is pagination by hand (`limit`, `offset`, a count query) accepted?"""
    assert_outcome(project(CHAPTER).write(PAGINATION, PAGINATION_ALTERNATIVE).check("ex3"), Outcome.PASS)


def test_an_empty_list_has_no_pages(project):
    """Does pagination by hand that counts an empty list as one page fail, whatever the seed?"""
    p = project(CHAPTER).write(PAGINATION, PAGINATION_ALTERNATIVE.replace(
        '"pages": math.ceil(total / per_page)', '"pages": max(1, math.ceil(total / per_page))'))
    assert_rejected(p.check("ex3"), "on an empty table: `pages` is 0")


@pytest.mark.parametrize(("old", "new", "expected"), [
    # a page count that drops a last page which is not full: the hint is about `pages`, not the defaults
    ('"pages": math.ceil(total / per_page)', '"pages": total // per_page', "Is `pages` the pagination's own"),
    # a total of this page's rows only
    ('"total": total,', '"total": min(total, per_page),', "Is `total` the pagination's own `result.total`"),
])
def test_a_wrong_count_is_hinted_at_by_its_own_cause(project, old, new, expected):
    """Does a wrong `pages` or `total` get a hint about how that number is counted, whichever page was asked for?"""
    p = project(CHAPTER).write(PAGINATION, PAGINATION_ALTERNATIVE.replace(old, new))
    for result in p.sweep("ex3"):
        assert_rejected(result, expected)
        assert "Do you default `page` to 1" not in result.text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("error_out=False", "error_out=True", "Did you pass `error_out=False`"),
        (  # no cap at all (db.paginate caps at 100 unless told otherwise)
            "per_page = min(_whole_number(\"per_page\", DEFAULT_PER_PAGE), MAX_PER_PAGE)\n"
            "    result = db.paginate(statement, page=page, per_page=per_page, error_out=False)",
            "per_page = _whole_number(\"per_page\", DEFAULT_PER_PAGE)\n"
            "    result = db.paginate(statement, page=page, per_page=per_page, error_out=False, max_per_page=None)",
            "Do you cap it with `min(per_page, MAX_PER_PAGE)`?",
        ),
        (  # trusts the query string
            '    text = request.args.get(name)\n    if text is None:',
            '    return int(request.args.get(name, default))\n    text = None\n    if text is None:',
            "is answered 400",
        ),
        (  # reads every row, then slices
            "    result = db.paginate(statement, page=page, per_page=per_page, error_out=False)\n"
            "    return {\n"
            '        "items": [serialize(item) for item in result.items],\n'
            '        "page": result.page,\n'
            '        "per_page": result.per_page,\n'
            '        "total": result.total,\n'
            '        "pages": result.pages,\n'
            "    }\n",
            "    rows = db.session.execute(statement).scalars().all()\n"
            "    start = (page - 1) * per_page\n"
            "    return {\n"
            '        "items": [serialize(item) for item in rows[start:start + per_page]],\n'
            '        "page": page,\n'
            '        "per_page": per_page,\n'
            '        "total": len(rows),\n'
            '        "pages": -(-len(rows) // per_page),\n'
            "    }\n",
            "reads every row",
        ),
        (  # pages counted from 0
            '    page = _whole_number("page", 1)\n',
            '    page = _whole_number("page", 1) + 1\n',
            "`page` is 1",
        ),
        (  # 1 refused: "at least 1" read as "more than 1"
            "    if number < 1:\n", "    if number <= 1:\n", "`paginate(...)` for `?page=1&per_page=",
        ),
    ],
)
def test_wrong_pagination_fails(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(PAGINATION, old, new).check("ex3"), expected)


def test_violated_constraint_names_each_broken_rule_on_sqlite(learner_package):
    """Does the given `violated_constraint` name a UNIQUE pair and a CHECK as the naming convention does, and give
    None for a NOT NULL and a foreign key, about which SQLite says nothing of a name? (PostgreSQL: the checks.)"""
    tickethub = learner_package(CHAPTER, "solution")
    from sqlalchemy.exc import IntegrityError
    from tickethub.db import db, violated_constraint
    from tickethub.models import Booking, Event, Venue

    app = tickethub.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_ENGINE_OPTIONS": {}})
    seen = []
    with app.app_context():
        db.create_all()
        event = Event(name="Gig", capacity=5, seats_left=5)
        db.session.add_all([event, Venue(name="Hall", city="Leeds", capacity=9)])
        db.session.commit()
        db.session.add(Booking(event_id=event.id, email="a@example.com", seats=1))
        db.session.commit()
        for broken in (lambda: db.session.add(Booking(event_id=event.id, email="a@example.com", seats=1)),
                       lambda: db.session.add(Venue(name="Hall", city="York", capacity=9)),
                       lambda: setattr(db.session.get(Event, event.id), "seats_left", -1),
                       lambda: db.session.add(Venue(name=None, city="York", capacity=9)),
                       lambda: db.session.add(Booking(event_id=10**6, email="b@example.com", seats=1))):
            broken()
            with pytest.raises(IntegrityError) as caught:
                db.session.commit()
            db.session.rollback()
            seen.append(violated_constraint(caught.value))
    assert seen == ["uq_bookings_event_id_email", "uq_venues_name", "ck_events_seats_left_not_negative", None, None]


# --- exercise 4: a taken name is a 409, any other broken rule a logged 500 ------------------------------

COMMIT = '''    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()  # the failed transaction is over; the session can work again
        # a unique rule of venues (the name; chapter 04 adds a slug made from it) is a taken name
        if (violated_constraint(error) or "").startswith("uq_venues_"):
            raise VenueNameTaken(name) from None
        raise  # anything else is a bug: Flask logs it, the visitor gets a 500
    return venue
'''
NAME_RULE = '''        if (violated_constraint(error) or "").startswith("uq_venues_"):
'''


@pytest.mark.parametrize("condition", [
    '        if violated_constraint(error) == "uq_venues_name":\n',
    # reads what each database gives, without the helper
    '        orig = error.orig\n'
    '        if "venues.name" in str(orig) or getattr(getattr(orig, "diag", None), "constraint_name", None) == "uq_venues_name":\n',
])
def test_venue_alternatives_pass(project, condition):
    """Are the exact constraint name, and a test of each database's own report, accepted?"""
    assert_outcome(project(CHAPTER).edit(VENUES, NAME_RULE, condition).check("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # every IntegrityError becomes "name taken": the NOT NULL bug is answered 409
        (NAME_RULE, "        if True:\n", "Do you raise `VenueNameTaken` for every `IntegrityError`?"),
        # a taken name is not mapped: it escapes, a 500
        (NAME_RULE, '        if violated_constraint(error) == "venues.name":\n', "raise `VenueNameTaken` when"),
        # no rollback before raising the domain error
        ("        db.session.rollback()  # the failed transaction is over; the session can work again\n", "",
         "Did you call `db.session.rollback()` before raising `VenueNameTaken`?"),
        # another broken rule is swallowed into a 422 instead of escaping
        ("        raise  # anything else is a bug: Flask logs it, the visitor gets a 500\n",
         '        raise InvalidVenue({"name": "Try again."}) from None\n', "answers 500"),
        # another broken rule is swallowed into a 409 of its own
        ("        raise  # anything else is a bug: Flask logs it, the visitor gets a 500\n",
         "        raise VenueNameTaken(name) from None\n", "Do you raise `VenueNameTaken` for every `IntegrityError`?"),
        # flushed, never committed
        ("        db.session.commit()\n    except IntegrityError", "        db.session.flush()\n    except IntegrityError",
         "Do you `db.session.commit()` before returning?"),
        ("a 500\n    return venue\n", "a 500\n", "Do you `return venue` after the commit?"),
    ],
)
def test_wrong_venue_services_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(VENUES, old, new).sweep("ex4"), expected)


def test_the_starter_still_answers_a_taken_name_with_an_error(project):
    """Does a service that commits without a `try` (the escaped `IntegrityError` of the name) fail the 409 step?"""
    p = project(CHAPTER).edit(VENUES, COMMIT, "    db.session.commit()\n    return venue\n")
    assert_rejected(p.check("ex4"), "raise `VenueNameTaken` when")


# --- exercise 5: the booking transaction ---------------------------------------------------------

def _book_body(body: str, project) -> str:
    text = project.read(BOOKINGS)
    line = "    email, seats = validate_booking(data, max_seats)\n"
    return text[: text.index(line)] + line + body


BOOK_CONDITIONAL_UPDATE = '''    # one UPDATE that only succeeds if the seats are there: no read-modify-write
    result = db.session.execute(
        db.update(Event)
        .where(Event.id == event_id, Event.seats_left >= seats)
        .values(seats_left=Event.seats_left - seats)
    )
    if result.rowcount != 1:
        event = db.session.get(Event, event_id)
        left = None if event is None else event.seats_left
        db.session.rollback()
        if left is None:
            raise EventNotFound(event_id)
        raise SoldOut(left)
    booking = Booking(event_id=event_id, email=email, seats=seats)
    db.session.add(booking)
    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        if violated_constraint(error) != "uq_bookings_event_id_email":
            raise
        raise AlreadyBooked(email) from None
    return booking
'''

BOOK_PRE_CHECK = '''    event = db.session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event_id)
    if event.seats_left < seats:
        raise SoldOut(event.seats_left)
    taken = db.session.execute(
        db.select(Booking).where(Booking.event_id == event_id, Booking.email == email)
    ).scalar_one_or_none()
    if taken is not None:
        raise AlreadyBooked(email)
    event.seats_left -= seats
    booking = Booking(event=event, email=email, seats=seats)
    db.session.add(booking)
    db.session.commit()
    return booking
'''


def test_booking_alternative_passes(project):
    """Is an atomic conditional `UPDATE ... WHERE seats_left >= :seats` accepted?"""
    p = project(CHAPTER)
    assert_outcome(p.write(BOOKINGS, _book_body(BOOK_CONDITIONAL_UPDATE, p)).check("ex5"), Outcome.PASS)


def test_looking_first_loses_the_race(project):
    """Does a service that looks for a duplicate instead of trusting the constraint fail the race?"""
    p = project(CHAPTER)
    assert_rejected(p.write(BOOKINGS, _book_body(BOOK_PRE_CHECK, p)).check("ex5"),
                    "Did you look for an existing booking first?")


EVERY_UNIQUE = '        if type(error.orig).__name__ == "UniqueViolation" or "UNIQUE" in str(error.orig):\n'  # either database's


def test_every_integrity_error_as_a_duplicate_fails_on_every_seed(project):
    """Is `book()` mapping every `IntegrityError` (or every unique one) to `AlreadyBooked` rejected on every seed?"""
    for condition in ("        if True:\n", EVERY_UNIQUE):
        p = project(CHAPTER).edit(BOOKINGS, '        if violated_constraint(error) == "uq_bookings_event_id_email":\n', condition)
        assert_rejected(p.sweep("ex5"), "Do you raise `AlreadyBooked` for every `IntegrityError`?")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # two transactions: the seats are saved even when the booking fails
            "    event.seats_left -= seats\n",
            "    event.seats_left -= seats\n    db.session.commit()\n",
            "the seat count is rolled back",
        ),
        (
            "        db.session.rollback()  # undo both, and make the session usable again\n",
            "",
            "Did you call `db.session.rollback()` before raising `AlreadyBooked`?",
        ),
        (  # refuses to sell the last seats
            "    if event.seats_left < seats:\n", "    if event.seats_left <= seats:\n",
            "do you refuse only when fewer are left than asked for",
        ),
        (  # the comparison the wrong way round: even the first booking is refused as sold out
            "    if event.seats_left < seats:\n", "    if event.seats_left > seats:\n",
            "do you raise `SoldOut` only when fewer seats are left than asked for?",
        ),
        (  # trusts the CHECK constraint to refuse overbooking
            "    if event.seats_left < seats:\n        raise SoldOut(event.seats_left)\n",
            "",
            "raises `SoldOut`",
        ),
        (  # the duplicate becomes a 500
            "    try:\n        db.session.commit()  # one commit: the new seat count and the booking, together\n"
            "    except IntegrityError as error:\n        db.session.rollback()  # undo both, and make the session usable again\n"
            '        if violated_constraint(error) == "uq_bookings_event_id_email":\n'
            "            raise AlreadyBooked(email) from None\n"
            "        raise  # any other broken rule is a bug: let it be logged, as a 500\n",
            "    db.session.commit()\n",
            "when `violated_constraint(error)` is",
        ),
        (  # every IntegrityError is a duplicate (a NOT NULL or a foreign key bug too)
            '        if violated_constraint(error) == "uq_bookings_event_id_email":\n', "        if True:\n",
            "Do you raise `AlreadyBooked` for every `IntegrityError`?",
        ),
        (  # every unique violation is a duplicate, whichever rule it is
            '        if violated_constraint(error) == "uq_bookings_event_id_email":\n',
            EVERY_UNIQUE,
            "Do you raise `AlreadyBooked` for every `IntegrityError`?",
        ),
        (  # the bug is swallowed: book() returns None
            "        raise  # any other broken rule is a bug: let it be logged, as a 500\n", "        return None\n",
            "Do you `raise` the `IntegrityError` again",
        ),
        (  # the wrong name: a duplicate escapes as a 500
            '        if violated_constraint(error) == "uq_bookings_event_id_email":\n',
            '        if violated_constraint(error) == "uq_bookings_email_event_id":\n',
            "when `violated_constraint(error)` is",
        ),
        (  # the service reads Flask's config itself again (chapter 01's rule)
            "from sqlalchemy.exc import IntegrityError\n",
            "from flask import current_app\nfrom sqlalchemy.exc import IntegrityError\n",
            "imports `flask`",
        ),
    ],
)
def test_wrong_bookings_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(BOOKINGS, old, new).check("ex5"), expected)


# --- exercise 6: pool settings -------------------------------------------------------------------

POOL_OPTIONS = '''    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_size": 5,  # connections each process keeps open, ready for the next request
        "max_overflow": 10,  # extra connections in a burst, closed again when they are returned
        "pool_pre_ping": True,  # test a connection before handing it out: survives database restarts
        "pool_recycle": 1800,  # replace connections after 30 minutes, before a server or proxy drops them
    }
'''
TESTING_DATABASE = '''    SQLALCHEMY_DATABASE_URI = "sqlite://"  # in memory: every app gets a new, empty database
    SQLALCHEMY_ENGINE_OPTIONS = {}  # an in-memory database lives in its one connection: no pool to tune
'''


def test_pool_alternative_passes(project):
    """Are `dict(...)`, `30 * 60`, `sqlite:///:memory:` and a pre-ping for tests accepted?"""
    p = project(CHAPTER).edit(CONFIG, POOL_OPTIONS, "    SQLALCHEMY_ENGINE_OPTIONS = dict(\n"
                              "        pool_recycle=30 * 60, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=10\n    )\n")
    p.edit(CONFIG, TESTING_DATABASE, '    SQLALCHEMY_DATABASE_URI = "sqlite:///:memory:"\n'
           '    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}\n')
    assert_outcome(p.check("ex6"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('        "pool_pre_ping": True,', "", '`"pool_pre_ping": True`'),
        ('"pool_recycle": 1800', '"pool_recycle": "1800"', '`"pool_recycle": 1800`'),
        (  # the in-memory database inherits pool_size
            "    SQLALCHEMY_ENGINE_OPTIONS = {}  #",
            "    #",
            "give `TestingConfig` `SQLALCHEMY_ENGINE_OPTIONS = {}`",
        ),
        ('SQLALCHEMY_DATABASE_URI = "sqlite://"', 'SQLALCHEMY_DATABASE_URI = "sqlite:///test.sqlite"', "an in-memory database"),
        (POOL_OPTIONS, "", "`Config.SQLALCHEMY_ENGINE_OPTIONS`, a dict"),  # no pool settings at all
        (  # production loses the pool settings (each environment is checked, whatever the seed)
            "    SESSION_COOKIE_SECURE = True\n", "    SESSION_COOKIE_SECURE = True\n    SQLALCHEMY_ENGINE_OPTIONS = {}\n",
            "from `ProductionConfig`, a `QueuePool`",
        ),
        pytest.param(  # fine on a SQLite file, where the option exists; psycopg refuses it
            'SQLALCHEMY_ENGINE_OPTIONS = {}  #', 'SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"check_same_thread": False}}  #',
            "`TestingConfig`'s engine options work on that database too", marks=pytest.mark.backends("postgresql")),
    ],
)
def test_wrong_pool_settings_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(CONFIG, old, new).check("ex6"), expected)


# --- dbkit: the database helpers that chapters 03 and 05 share ---------------------------------------

TOUR = Chapter("checkers.chapters.ch97_dbkit_tour", "dbkit's helpers, each once")
TOUR.name = CHAPTER  # chapter 03's files, so that its ex1 counts as attempted
tour = TOUR.exercise("dbkit's helpers")


@tour.step("every helper answers with plain data, refusals as `Refusal`s")
def _tour(t, state):
    check = dbkit.check_app(t, "events", "bookings")
    venues = dbkit.insert(t, "venues", {"name": "A", "city": "X", "capacity": 9}, {"name": "B", "city": "Y", "capacity": 5})
    assert venues == sorted(venues) and all(type(i) is int for i in venues), venues
    done = dbkit.write(t, dbkit.insert_op("events", {"name": "E", "capacity": 3, "seats_left": 3, "venue_id": venues[0]}),
                       dbkit.update_op("venues", {"id": venues[1]}, add={"capacity": 2}),
                       dbkit.sql_op("SELECT capacity FROM venues WHERE id = :id", {"id": venues[1]}))
    (event,), updated, rows = done
    assert (updated, rows) == (1, [(7,)]), done
    assert dbkit.rows(t, "venues", columns=["name"], order_by="name") == [{"name": "A"}, {"name": "B"}]
    assert dbkit.one(t, "events", event)["venue_id"] == venues[0] and dbkit.count(t, "events", venue_id=venues[1]) == 0
    assert dbkit.query(t, "SELECT name FROM venues WHERE id = :id", {"id": venues[0]}, fresh=True) == [("A",)]
    refusal = dbkit.write(t, dbkit.insert_op("venues", {"name": "A", "city": "Z", "capacity": 1}), refusable=True)
    assert isinstance(refusal, dbkit.Refusal) and refusal.isa("IntegrityError") and dbkit.count(t, "venues") == 2
    schema = dbkit.describe(t, check.db, {"Event": check.model("Event"), "Nothing": None})
    assert schema["Nothing"] == {"model": False, "mapped": False}, schema["Nothing"]
    assert schema["Event"]["table"] == "events" and schema["Event"]["relationships"]["venue"]["target"] == check.model("Venue")
    assert schema["Event"]["checks"] == [("ck_events_seats_left_not_negative", "seats_left >= 0")]  # db.py names it
    with dbkit.app_context(t, check.app), dbkit.recording(t, check.engine) as seen:
        found = check.session.get(check.model("Event"), event)
        shot = dbkit.snapshot(t, found, {"name": None, "venue": ["name", "city"], "bookings": ["email"]})
        missing = dbkit.snapshot(t, found, ["name", "nope"], refusable=True)
    assert shot == {"name": "E", "venue": {"name": "A", "city": "X"}, "bookings": []}, shot
    assert isinstance(missing, dbkit.Refusal) and missing.message.startswith("event.nope"), missing
    assert any("FROM events" in sql and event in (params.values() if isinstance(params, dict) else params)
               for sql, params in seen.statements), seen.statements
    meanwhile = dbkit.update_op("events", {"id": event}, set={"seats_left": 1})
    with dbkit.interleave(t, check.engine, meanwhile, before=r"^\s*UPDATE events\b") as other:
        reply = check.client.patch(f"/api/events/{event}", json={"capacity": 4})
    assert other.done and other.refusal is None and other.results == [1] and reply.status_code == 200, other.results
    assert dbkit.one(t, "events", event)["seats_left"] == 4, "the app's UPDATE came after the other request's"
    dbkit.create_table(t, "extra", {"id": "id", "flag": "bool"}, [{"id": 1, "flag": True}])
    statement = dbkit.statement(t, "extra", "flag", order_by="id")
    assert "ORDER BY extra.id" in dbkit.sql_of(t, statement, check.engine)
    with dbkit.app_context(t, check.app):
        assert dbkit.execute(t, check.db, statement) == [(True,)]
        assert dbkit.execute(t, check.db, check.session.get(check.model("Event"), event), refusable=True).isa(
            "ArgumentError"), "a model object is no statement"
    engine = dbkit.engine_of(t, check.app, check.db)
    assert dbkit.ping(t, engine, 7) == 7 and dbkit.url_facts(t, engine)["memory"] is False
    assert dbkit.pool_facts(t, engine, 2)["out"] == 2


def test_dbkit_helpers_answer_as_documented(project, monkeypatch):
    """Does each of dbkit's helpers work across the boundary, on the reference project (chapter 05 builds on them)?"""
    monkeypatch.setitem(sys.modules, TOUR.module, types.SimpleNamespace(chapter=TOUR))
    request = {"module": TOUR.module, "exercise": "ex1", "project": str(project(CHAPTER).root), "seed": 1}
    assert_outcome(Result.from_dict(sandbox.run_forked(request)), Outcome.PASS)


def test_dbkit_plain_values():
    """Do dates, decimals, SQLAlchemy's string types and unknown objects come back as plain data?"""
    assert dbkit.plain({"on": datetime.date(2025, 3, 1), "price": decimal.Decimal("9.50"), "n": (1, None)}) == {
        "on": "2025-03-01", "price": "9.50", "n": (1, None)}
    assert type(dbkit.plain(type("quoted", (str,), {})("venues"))) is str
    assert dbkit.plain(object()) == "<object object>"
    refusal = dbkit.Refusal.of(dbkit.refused(KeyError("x")))
    assert refusal.isa("LookupError") and not refusal.isa("IntegrityError") and refusal.seen() == "`KeyError: 'x'`"

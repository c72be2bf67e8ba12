"""Chapter 00's warm-up check: alternative answers pass, wrong ones fail (see test_every_exercise.py)."""
import pytest

from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "00-welcome"
WARMUP = "tickethub/warmup.py"


def test_alternative_passes(project):
    """Is a different but correct style (jsonify, route(methods=…), manual parsing) accepted?"""
    p = project(CHAPTER)
    p.write(WARMUP, '''
from flask import Blueprint, jsonify, request

bp = Blueprint("warmup", __name__, url_prefix="/api")


@bp.route("/greet/<name>", methods=["GET"])
def greet(name):
    return jsonify(message="Welcome to TicketHub, " + name + "!")


@bp.route("/quote")
def quote():
    try:
        price = float(request.args["price"])
        quantity = int(request.args["quantity"])
    except (KeyError, ValueError):
        return jsonify(error="bad query"), 400
    if price != price or price in (float("inf"), float("-inf")):  # nan is the one value unequal to itself
        return jsonify(error="a price is a finite number"), 400
    return jsonify(total=price * quantity)


@bp.route("/cart", methods=["POST"])
def cart():
    if not request.is_json:
        return jsonify(error="JSON please"), 400
    data = request.get_json()
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or any(not isinstance(i, dict) for i in items):  # a cart must hold a list
        return jsonify(error="no items"), 400
    if any(isinstance(i.get("price"), bool) or not isinstance(i.get("price"), (int, float))
           or type(i.get("quantity")) is not int for i in items):
        return jsonify(error="every item needs a number price and a whole-number quantity"), 400
    return jsonify(count=sum(i["quantity"] for i in items),
                   total=sum(i["price"] * i["quantity"] for i in items))
''')
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # a hard-coded greeting
            'f"Welcome to TicketHub, {name}!"',
            '"Welcome to TicketHub, Ada!"',
            "Does the message use the `name` from the URL",
        ),
        (  # query values left as text: "12.5" * 3 fails, so multiply the strings' lengths
            'price = request.args.get("price", type=float)',
            'price = len(request.args.get("price", ""))',
            "Did you convert the query values to numbers",
        ),
        (  # no validation: a missing quantity crashes instead of answering 400
            "    if price is None or quantity is None or not math.isfinite(price):\n",
            "    if False:\n",
            "ERROR",
        ),
        (  # request.json refuses plain text with 415 of its own
            "data = request.get_json(silent=True)",
            "data = request.json",
            "answered 415",
        ),
        (  # counts items instead of tickets
            'count = sum(item["quantity"] for item in items)',
            "count = len(items)",
            "Is `count` the sum of the quantities",
        ),
        (  # the cart as GET
            '@bp.post("/cart")',
            '@bp.get("/cart")',
            "answered 405",
        ),
    ],
)
def test_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(WARMUP, old, new).sweep("ex1"), expected)


# one wrong answer per requirement of the exercise's text, each breaking that one alone
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"Welcome to TicketHub, {name}!"', '"Welcome to TicketHub {name}!"', "exact wording"),  # 1: the message
        ('@bp.get("/greet/<name>")', '@bp.get("/hello/<name>")', "answered 404"),  # 1: the URL
        ('price = request.args.get("price", type=float)',  # 2: price a number, not a whole number
         'price = request.args.get("price", type=int)', "is not a whole number"),
        ('quantity = request.args.get("quantity", type=int)',  # 2: quantity a whole number
         'quantity = request.args.get("quantity", type=float)', "answers 400"),
        ('return {"total": round(price * quantity, 2)}', 'return {"total": round(price * quantity, 1)}',
         "price"),  # 2: the total is price × quantity
        ('return {"error": "give ?price=<number>&quantity=<whole number>"}, 400',  # 2: the 400's body
         'return {"message": "give ?price=<number>&quantity=<whole number>"}, 400', "an `error` key"),
        ('return {"error": \'send JSON like', 'return {"problem": \'send JSON like', "an `error` key"),  # 3
        (" or not all(_is_item(item) for item in items):", ":", "Do you check every item"),  # 3: each item
        ("type(quantity) is int", "type(quantity) in (int, float)", "a `quantity` that is not a whole number"),  # 3
        (" or not math.isfinite(price)", "", "`GET /api/quote?price=nan&quantity=2` answers 400"),  # 2: finite
        ('total = sum(item["price"] * item["quantity"] for item in items)',  # 3: the sum of price × quantity
         'total = sum(item["price"] for item in items)', "the sum of"),
    ],
)
def test_each_requirement_is_checked(project, old, new, expected):
    """Does every stated requirement fail on its own, on every seed?"""
    assert_rejected(project(CHAPTER).edit(WARMUP, old, new).sweep("ex1"), expected)


def test_a_quote_that_crashes_on_bad_input_fails(project):
    """Does a quote that answers 500 (or an HTML 400) to a price that is not a number fail?"""
    p = project(CHAPTER).edit(WARMUP, 'price = request.args.get("price", type=float)',
                              'price = float(request.args["price"])')
    assert_rejected(p.sweep("ex1"), "`GET /api/quote` answers 400 with a JSON error")


def test_total_as_text_fails(project):
    """Does a total sent as a string fail, even when its digits are right?"""
    p = project(CHAPTER).edit(WARMUP, 'return {"total": round(price * quantity, 2)}',
                              'return {"total": str(round(price * quantity, 2))}')
    assert_outcome(p.sweep("ex1"), Outcome.FAIL, "a number")

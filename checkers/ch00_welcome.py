"""Checks for chapter 00: welcome (routes, request data and JSON through the test client)."""
from flask import Blueprint, Flask

from .checking import show
from .exercise import Chapter

chapter = Chapter(__name__, "Welcome")

ex1 = chapter.exercise(
    "Warm-up: routes, request data and JSON",
    hints=[
        "Each route is a function decorated with `@bp.get(...)` or `@bp.post(...)`. Return a "
        "`dict` and Flask turns it into a JSON response; return `(dict, 400)` to set the status.",
        "URL variables arrive as arguments: `@bp.get(\"/greet/<name>\")` calls `greet(name)`. "
        "The query string is in `request.args`: `request.args.get(\"quantity\", type=int)` gives "
        "`None` when the value is missing or not a whole number. For the JSON body use "
        "`request.get_json(silent=True)`, which gives `None` instead of an error when the body "
        "is not JSON.",
        "`quote()` needs `price = request.args.get(\"price\", type=float)` and "
        "`quantity = request.args.get(\"quantity\", type=int)`; if either is `None`, "
        "`return {\"error\": \"...\"}, 400`. `cart()` reads `data = request.get_json(silent=True)` and "
        "checks `isinstance(data, dict) and isinstance(data.get(\"items\"), list)` before adding "
        "up `item[\"price\"] * item[\"quantity\"]`.",
    ],
)


@ex1.step("`tickethub/warmup.py` defines `bp`, a `Blueprint`")
def _blueprint(t):
    warmup = t.module("tickethub.warmup")
    bp = getattr(warmup, "bp", None)
    t.require(
        isinstance(bp, Blueprint),
        "a `Blueprint` named `bp` in `tickethub/warmup.py`",
        f"`bp` is {show(bp)}",
        "Did you keep the line `bp = Blueprint(\"warmup\", __name__, url_prefix=\"/api\")`?",
    )


@ex1.step("`create_app()` builds the app with the warm-up routes")
def _app(t):
    app = t.module("tickethub").create_app({"TESTING": True})
    t.require(isinstance(app, Flask), "`create_app()` returns a Flask app", f"it returned {show(app)}")
    t.client = app.test_client()


@ex1.step("`GET /api/greet/<name>` welcomes the visitor by name")
def _greet(t):
    name = t.word().title()
    body = t.json(t.client.get(f"/api/greet/{name}"), 200, "a JSON greeting",
                  "Is there a route `@bp.get(\"/greet/<name>\")` that returns a `dict`?")
    wanted = f"Welcome to TicketHub, {name}!"
    t.require(
        isinstance(body, dict) and body.get("message") == wanted,
        f'`{{"message": "{wanted}"}}`',
        f"`{show(body)}`",
        "Does the message use the `name` from the URL, with the exact wording and punctuation?",
    )


@ex1.step("`GET /api/quote?price=…&quantity=…` answers the total price")
def _quote(t):
    price = t.rng.randrange(500, 9000) / 100
    quantity = t.rng.randrange(2, 9)
    body = t.json(t.client.get(f"/api/quote?price={price}&quantity={quantity}"), 200,
                  "the total as JSON", "Is there a route `@bp.get(\"/quote\")`?")
    total = body.get("total") if isinstance(body, dict) else None
    t.require(
        type(total) in (int, float) and abs(total - price * quantity) < 0.005,
        f'`{{"total": {round(price * quantity, 2)}}}` (price {price} × quantity {quantity}), a number',
        f"`{show(body)}`",
        "Did you convert the query values to numbers, e.g. `request.args.get(\"price\", type=float)`? "
        "Query strings are always text until you convert them.",
    )


@ex1.step("`GET /api/quote` answers 400 with a JSON error when a value is missing or not a number")
def _quote_errors(t):
    price = t.rng.randrange(100, 900) / 100
    for query in (f"price={price}", f"price={price}&quantity={t.word()}", f"quantity={t.rng.randrange(1, 9)}"):
        body = t.json(t.client.get(f"/api/quote?{query}"), 400, "a JSON error",
                      "Do you check for `None` after `request.args.get(..., type=...)` and "
                      "`return {\"error\": \"...\"}, 400`?")
        t.require(
            isinstance(body, dict) and "error" in body,
            'a body like `{"error": "…"}`',
            f"`{show(body)}` for `/api/quote?{query}`",
            "Does the error response have an `error` key?",
        )


@ex1.step("`POST /api/cart` with a JSON list of items answers the count and the total")
def _cart(t):
    items = [
        {"price": t.rng.randrange(100, 5000) / 100, "quantity": t.rng.randrange(1, 5)}
        for _ in range(t.rng.randrange(2, 5))
    ]
    count = sum(i["quantity"] for i in items)
    total = sum(i["price"] * i["quantity"] for i in items)
    body = t.json(t.client.post("/api/cart", json={"items": items}), 200, "the count and total as JSON",
                  "Is there a route `@bp.post(\"/cart\")`? (A `@bp.get` route answers 405 to a POST.)")
    ok = (
        isinstance(body, dict)
        and type(body.get("count")) is int
        and body["count"] == count
        and type(body.get("total")) in (int, float)
        and abs(body["total"] - total) < 0.005
    )
    t.require(
        ok,
        f'`{{"count": {count}, "total": {round(total, 2)}}}` for `{{"items": {items}}}`',
        f"`{show(body)}`",
        "Is `count` the sum of the quantities (not the number of items), and `total` the sum of "
        "`price * quantity`?",
    )


@ex1.step("`POST /api/cart` answers 400 with a JSON error when the body is not a JSON cart")
def _cart_errors(t):
    for kwargs, what in (
        ({"data": "two tickets please", "content_type": "text/plain"}, "a plain-text body"),
        ({"json": {"tickets": []}}, "JSON without an `items` list"),
    ):
        response = t.client.post("/api/cart", **kwargs)
        t.json(response, 400, f"a JSON error for {what}",
               "Do you read the body with `request.get_json(silent=True)` (which gives `None` "
               "rather than an error) and answer `{\"error\": …}, 400` when there is no `items` list?")


setup, reset = chapter.setup, chapter.reset

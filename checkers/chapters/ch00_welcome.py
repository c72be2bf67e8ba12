"""Checks for chapter 00: welcome (routes, request data and JSON through the test client)."""
from flask import Blueprint

from ..notebook.api import Chapter
from .kit import app_from_factory, number

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
        "`quantity = request.args.get(\"quantity\", type=int)`; if either is `None`, or the price is not "
        "finite (`math.isfinite(price)`), `return {\"error\": \"...\"}, 400`. `cart()` reads "
        "`data = request.get_json(silent=True)` and checks `isinstance(data, dict) and "
        "isinstance(data.get(\"items\"), list)`, and that every item is a `dict` whose `price` is an `int` or "
        "`float` and whose `quantity` is an `int`, before adding up `item[\"price\"] * item[\"quantity\"]`.",
    ],
)
ex1.defines("tickethub.warmup", bp=Blueprint)


@ex1.step("`create_app()` builds the app with the warm-up routes")
def _app(t, names):
    return t.client(app_from_factory(t, {"TESTING": True}))


@ex1.step("`GET /api/greet/<name>` welcomes the visitor by name")
def _greet(t, client):
    name = t.word().title()
    body = t.json(client.get(f"/api/greet/{name}"), 200, "a JSON greeting",
                  "Is there a route `@bp.get(\"/greet/<name>\")` that returns a `dict`?")
    wanted = {"message": f"Welcome to TicketHub, {name}!"}
    t.require(body == wanted, f"`{wanted}`", f"`{body}`",
              "Does the message use the `name` from the URL, with the exact wording and punctuation?")
    return client


@ex1.step("`GET /api/quote?price=…&quantity=…` answers the total price")
def _quote(t, client):
    # a whole price, and one whose total has a last cent that is never 0, whatever the seed:
    # `type=int` for the price, or a total rounded to fewer than 2 decimals, always fails
    cents = t.rng.randrange(50, 900) * 10 + t.rng.choice((1, 3, 7, 9))
    for price, quantity in ((t.rng.randrange(5, 90), t.rng.randrange(2, 9)), (cents / 100, t.rng.choice((3, 7)))):
        reply = client.get(f"/api/quote?price={price}&quantity={quantity}")
        body = t.json(reply, 200, "the total as JSON",
                      "Is the price read as a decimal number (`type=float`)? A price like "
                      f"`{price}` is not a whole number." if reply.status_code == 400 else
                      "Is there a route `@bp.get(\"/quote\")`?")
        total = body.get("total") if isinstance(body, dict) else None
        t.require(number(total) and abs(total - price * quantity) < 0.005,
                  f'`{{"total": {round(price * quantity, 2)}}}` (price {price} × quantity {quantity}), a number',
                  f"`{body}`",
                  "Did you convert the query values to numbers, e.g. `request.args.get(\"price\", type=float)`? "
                  "Query strings are always text until you convert them.")
    return client


@ex1.step("`GET /api/quote` answers 400 with a JSON error when a value is missing or not a number")
def _quote_errors(t, client):
    price = t.rng.randrange(100, 900) / 100
    for query in (f"price={price}", f"price={price}&quantity={t.word()}", f"quantity={t.rng.randrange(1, 9)}",
                  f"price={t.word()}&quantity=2", f"price={price}&quantity=1.5", "", "price=nan&quantity=2",
                  "price=inf&quantity=2", f"price=-inf&quantity={t.rng.randrange(1, 9)}"):
        body = t.json(client.get(f"/api/quote?{query}"), 400, "a JSON error",
                      "Do you refuse prices that are not finite, with `math.isfinite(price)`? `float()` accepts "
                      "`nan` and `inf`." if "inf" in query or "nan" in query else
                      "Do you check for `None` after `request.args.get(..., type=...)` and "
                      "`return {\"error\": \"...\"}, 400`?")
        t.require(isinstance(body, dict) and "error" in body, 'a body like `{"error": "…"}`',
                  f"`{body}` for `/api/quote?{query}`", "Does the error response have an `error` key?")
    return client


@ex1.step("`POST /api/cart` with a JSON list of items answers the count and the total")
def _cart(t, client):
    # one item whose cents never end in 0 (odd cents × 3 or 7), the rest whole prices: a total
    # rounded to fewer than 2 decimals is wrong on every seed; quantity 3 or 7 also keeps the
    # count from ever being just the number of items
    first = {"price": (t.rng.randrange(10, 500) * 10 + t.rng.choice((1, 3, 7, 9))) / 100, "quantity": t.rng.choice((3, 7))}
    others = [{"price": t.rng.randrange(1, 50), "quantity": t.rng.randrange(1, 5)} for _ in range(t.rng.randrange(1, 4))]
    carts = [[first, *others], []]  # an empty cart is a cart too
    for items in carts:
        count = sum(i["quantity"] for i in items)
        total = sum(i["price"] * i["quantity"] for i in items)
        body = t.json(client.post("/api/cart", json={"items": items}), 200, "the count and total as JSON",
                      "Is there a route `@bp.post(\"/cart\")`? (A `@bp.get` route answers 405 to a POST.)")
        ok = (isinstance(body, dict) and type(body.get("count")) is int and body["count"] == count
              and number(body.get("total")) and abs(body["total"] - total) < 0.005)
        t.require(ok, f'`{{"count": {count}, "total": {round(total, 2)}}}` for `{{"items": {items}}}`',
                  f"`{body}`", "Is `count` the sum of the quantities (not the number of items), and "
                  "`total` the sum of `price * quantity`?")
    return client


BODY_HINT = ("Do you read the body with `request.get_json(silent=True)` (which gives `None` rather than an "
             "error) and answer `{\"error\": …}, 400` when there is no `items` list?")
ITEM_HINT = ("Do you check every item before adding up: a `dict` whose `price` is an `int` or `float` and whose "
             "`quantity` is an `int`?")


@ex1.step("`POST /api/cart` answers 400 with a JSON error when the body is not a JSON cart, or an item is not one",
          errors={"TypeError": ITEM_HINT, "KeyError": ITEM_HINT, "AttributeError": ITEM_HINT})
def _cart_errors(t, client):
    for kwargs, what, hint in (
        ({"data": "two tickets please", "content_type": "text/plain"}, "a plain-text body", BODY_HINT),
        ({"json": {"tickets": []}}, "JSON without an `items` list", BODY_HINT),
        ({"json": ["x"]}, "a JSON list instead of an object", BODY_HINT),
        ({"json": {"items": "two"}}, "an `items` that is not a list", BODY_HINT),
        ({"json": {"items": [{"price": t.rng.randrange(1, 50)}]}}, "an item without a `quantity`", ITEM_HINT),
        ({"json": {"items": [{"quantity": t.rng.randrange(1, 5)}]}}, "an item without a `price`", ITEM_HINT),
        ({"json": {"items": [t.word()]}}, "an item that is not an object", ITEM_HINT),
        ({"json": {"items": [{"price": "12.50", "quantity": 1}]}}, "a `price` that is text", ITEM_HINT),
        ({"json": {"items": [{"price": 5, "quantity": 1.5}]}}, "a `quantity` that is not a whole number", ITEM_HINT),
    ):
        body = t.json(client.post("/api/cart", **kwargs), 400, f"a JSON error for {what}", hint)
        t.require(isinstance(body, dict) and "error" in body, 'a body like `{"error": "…"}`',
                  f"`{body}` for {what}", "Does the error response have an `error` key?")


setup, reset = chapter.setup, chapter.reset

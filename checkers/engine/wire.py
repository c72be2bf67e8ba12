"""What crosses between the judge and the learner's process: framed JSON, values by value.

Plain values (None, bool, int, float, str and the exact built-in containers of them; a
subclass of str, int or float as its base value) travel as data, so no object whose `__eq__` or `__str__` the learner wrote ever reaches the judge.
Anything else stays in the learner's process and travels as a handle: an id and a few
facts about its type, computed there.
"""
from __future__ import annotations

import base64
import json
import os
import struct

MAX_FRAME = 32 << 20  # a larger answer is not read: the learner's process is misbehaving
MAX_DEPTH = 40
SCALARS = (type(None), bool, int, float, str)


class WireError(Exception):
    """A frame that could not be read: the other side died or sent garbage."""


def send(fd: int, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


def receive(fd: int) -> dict:
    size = struct.unpack(">I", _read(fd, 4))[0]
    if size > MAX_FRAME:
        raise WireError(f"a frame of {size} bytes is too large")
    try:
        message = json.loads(_read(fd, size))
    except ValueError as error:
        raise WireError(f"an unreadable frame ({error})") from None
    if not isinstance(message, dict):
        raise WireError("a frame that is not an object")
    return message


def _read(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WireError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode(value, handle, depth: int = 0):
    """Turn a value into JSON data; `handle(value)` encodes what cannot travel by value."""
    kind = type(value)
    if kind in SCALARS:
        return value
    # a subclass of str, int or float (SQLAlchemy's quoted names, IntEnum statuses) travels as its
    # base value, taken by the base class's own method: the subclass's overrides never run
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if depth < MAX_DEPTH:
        if kind is list:
            return ["L", [encode(v, handle, depth + 1) for v in value]]
        if kind is tuple:
            return ["T", [encode(v, handle, depth + 1) for v in value]]
        if kind in (set, frozenset):
            return ["S" if kind is set else "F", [encode(v, handle, depth + 1) for v in value]]
        if kind is dict:
            return ["D", [[encode(k, handle, depth + 1), encode(v, handle, depth + 1)] for k, v in value.items()]]
        if kind is bytes:
            return ["B", base64.b64encode(value).decode()]
    return ["H", *handle(value)]


def decode(data, handle):
    """The inverse of `encode`; `handle(id, info)` makes whatever stands for a handle."""
    if not isinstance(data, list):
        return data
    tag, body = data[0], data[1]
    if tag == "L":
        return [decode(v, handle) for v in body]
    if tag == "T":
        return tuple(decode(v, handle) for v in body)
    if tag == "S":
        return {decode(v, handle) for v in body}
    if tag == "F":
        return frozenset(decode(v, handle) for v in body)
    if tag == "D":
        return {decode(k, handle): decode(v, handle) for k, v in body}
    if tag == "B":
        return base64.b64decode(body)
    if tag == "H":
        return handle(body, data[2] if len(data) > 2 else {})
    raise WireError(f"an unknown tag {tag!r}")

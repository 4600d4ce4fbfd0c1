"""Request ids: one per HTTP request, kept from the client's `X-Request-Id` when sane,
else made here; sent back as the answer's `X-Request-Id` and carried by every log line
written while the request is served (api/logs.py reads it).

Set by the front door (api/front_door.py), the first code of the app every request
meets, in the request's own task: its context is the request's, and no other's.
"""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar

from litestar.types import Scope

HEADER = b"x-request-id"
# Sane: what a proxy or a client library generates (UUIDs, hex, ULIDs, dotted traces),
# short, and harmless in a log line or a header.
SANE = re.compile(rb"[A-Za-z0-9._-]{1,128}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def begin(scope: Scope) -> None:
    """Give the request (or websocket) in `scope` its id: the client's when sane, else
    a new one."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if SANE.fullmatch(value):
                _current.set(value.decode("ascii"))
                return
            break
    _current.set(_new())


# A new id: this process's random 64 bits, then its count of requests, 32 hex digits in
# all. Unique across workers and restarts as a random id is, without a system call for
# randomness on every request (a third of the cost); not a secret, as no id is.
_PROCESS = os.urandom(8).hex()
_numbers = itertools.count()


def _new() -> str:
    return f"{_PROCESS}{next(_numbers):016x}"


def current() -> str | None:
    """The id of the request being served, None outside any request."""
    return _current.get()


def current_or_new() -> str:
    """The id of the request being served; a code path that runs outside the front
    door (a test driving a handler alone) gets a fresh one."""
    return _current.get() or _new()

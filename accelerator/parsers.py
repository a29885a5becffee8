"""The API's one request parser: JSON that PostgreSQL and the services can take, or a 4xx that says why.

DRF's own JSONParser turns bodies like 10,000 nested `[` (RecursionError), integers beyond 64 bits, `1e999`
(infinity) or strings holding NUL into 500s further down: PostgreSQL refuses them when they are stored. Here
they are refused where they enter, once for every endpoint, with a sentence the client can act on. The body
is read with a bound, so a huge JSON body is answered 413 instead of being held in memory.
"""

from __future__ import annotations

import json
import math

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, get_encoding
from rest_framework.renderers import JSONRenderer

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 64


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = "The request body is too large."


def _parse_int(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ParseError(
            f"The number {text[:30]}{'...' if len(text) > 30 else ''} does not fit in 64 bits "
            f"(-2^63 .. 2^63-1); send a smaller number."
        )
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"The number {text[:30]} is too large to store; send a finite number.")
    return value


def _reject_constant(name: str):
    raise ParseError(f"{name} is not valid JSON; send a finite number or null.")


def check_value(value) -> None:
    """Refuse nesting deeper than MAX_DEPTH and NUL characters in keys and strings (iteratively, no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ParseError("Text in the request contains a NUL character (\\u0000), which cannot be stored.")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise ParseError(f"The JSON body is nested more than {MAX_DEPTH} levels deep; flatten it.")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)


class JSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            raw = b""
        else:
            raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise BodyTooLarge(f"The JSON body is larger than {limit} bytes; send less in one request.")
        try:
            text = raw.decode(get_encoding(parser_context or {}))
        except UnicodeDecodeError as exc:
            raise ParseError(f"The JSON body is not valid text in its charset: {exc.reason}.") from None
        try:
            value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError(f"The JSON body is nested too deeply; at most {MAX_DEPTH} levels are accepted.") from None
        except ValueError as exc:  # JSONDecodeError, and int() past Python's digit limit
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        check_value(value)
        return value

"""Errors every face shows: the field error, the input-error exception, the JSON envelope,
and the one text check every text input passes before it can reach a write.

A message names fields in braces (`"{currency} is required when {amount} is given"`),
so each face can spell them as its clients do: the pixel as its query parameters
(`player_id`), GraphQL as its input fields (`playerId`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

# How a face spells a field: the pixel keeps the service's names, GraphQL camel-cases them.
FieldNaming = Callable[[str], str]


def as_named(name: str) -> str:
    """The service's own spelling, which is the pixel's and the CLI's."""
    return name


class _Names(dict[str, str]):
    def __init__(self, naming: FieldNaming) -> None:
        super().__init__()
        self._naming = naming

    def __missing__(self, key: str) -> str:
        return self._naming(key)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str | None  # None for an error about the request as a whole
    code: str
    # May name fields in braces; literal braces are doubled: "{{click_id}}".
    message: str

    def named(self, naming: FieldNaming = as_named) -> FieldError:
        """This error as a face shows it, every field spelled by `naming`."""
        return FieldError(
            naming(self.field) if self.field is not None else None,
            self.code,
            self.message.format_map(_Names(naming)),
        )


class InvalidInputError(Exception):
    """Input that breaks the rules; `errors` names every bad field at once."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(error.named().message for error in errors))
        self.errors = errors


@dataclass(frozen=True)
class StoreUnavailable:
    """The outcome of a write the store could not take now: the caller should retry."""

    reason: str


class ErrorBody(msgspec.Struct):
    """The shape of every JSON error body of the HTTP faces (OpenAPI shows it)."""

    errors: list[FieldError]


# The one answer to an unexpected error: what went wrong goes to the log, not the client.
INTERNAL_ERROR = FieldError(None, "internal_error", "internal server error")


def error_body(errors: Iterable[FieldError], naming: FieldNaming = as_named) -> bytes:
    """The JSON envelope: `{"errors": [{"field": ..., "code": ..., "message": ...}]}`."""
    return msgspec.json.encode(ErrorBody([error.named(naming) for error in errors]))


def text_errors(
    name: str, value: str | None, *, max_length: int, required: bool = False
) -> list[FieldError]:
    """The rules for every stored text: bounded, and free of anything a store or a
    reader would choke on (control characters, NUL among them, and lone surrogates,
    which no UTF-8 column can hold). Empty counts as absent."""
    field = "{" + name + "}"  # named as the face spells it
    if not value:
        return [FieldError(name, "required", f"{field} is required")] if required else []
    if len(value) > max_length:
        message = f"{field} must be at most {max_length} characters"
        return [FieldError(name, "too_long", message)]
    # Printable text has neither: the common case skips the scan.
    if not value.isprintable():
        categories = {unicodedata.category(character) for character in value}
        if "Cc" in categories:
            message = f"{field} must not contain control characters"
            return [FieldError(name, "control_character", message)]
        if "Cs" in categories:
            message = f"{field} must be valid Unicode text, without lone surrogates"
            return [FieldError(name, "invalid_text", message)]
    return []

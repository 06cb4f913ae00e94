"""What every section of the stack config shares: the project name, the environment names,
common field types, and helpers for secret fields and cross-field errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

PROJECT = "llm-platform"

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]


def error_at(loc: tuple[str | int, ...], value: Any, message: str) -> ValidationError:
    """For a cross-field check in a validator of field F: an error reported at F.<loc> (the key
    that holds the bad value), not at F itself. Raise what it returns."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=loc, input=value
    )
    return ValidationError.from_exception_data("StackConfig", [detail])


def secret(default: Any = None, **kw: Any) -> Any:
    """A field that must come from a Pulumi secret (`pulumi config set --secret`)."""
    return Field(default, json_schema_extra={"secret": True}, **kw)

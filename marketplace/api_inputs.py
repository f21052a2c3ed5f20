"""What the API's inputs share, so that the schema says exactly what the API accepts.

- `BodyIn`: the base of every JSON request body. A body is a JSON object: ninja would read a
  list or a string as an object with no fields, and an all-optional body would accept it.
- `declared(...)`: JSON Schema keywords for a rule that a service or selector checks itself,
  with its own error code (`empty_body`, `invalid_limit`, ...). The schema states the rule;
  the value is validated once, where the rule lives. Use the service's own constants.
- Booleans and integers in bodies are `StrictBool` / `JsonInt`: pydantic would otherwise take
  `"yes"` for true and `"5"` for 5, which the schema does not allow. (JSON Schema's integers
  include 5.0, which StrictInt refuses: JsonInt takes it.)
"""

from typing import Annotated, Any

from ninja import Schema
from ninja.schema import DjangoGetter
from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from marketplace.patterns import NO_NUL, NOT_BLANK, SPACE  # noqa: F401 -- for the API modules


def _not_text_nor_boolean(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_not_text_nor_boolean)]


class BodyIn(Schema):
    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        # ninja's own validator runs first and wraps the input (a dict, or whatever was sent).
        if not isinstance(data._obj if isinstance(data, DjangoGetter) else data, dict):
            raise PydanticCustomError("model_type", "Input should be a JSON object")
        return data


def declared(default: Any = ..., *, description: str | None = None, **keywords: Any) -> Any:
    """A field whose rule a service checks: `keywords` go into its JSON Schema as they are
    (minLength, pattern, enum, minimum ...). Inside `Annotated[str, declared()] | None` they
    apply to the string, not to null."""
    return Field(default, description=description, json_schema_extra=keywords)

"""Values against a definition's attribute spec (a default, a CSV cell …), and the error
every spec check raises: a ``ValidationError`` whose ``field`` is the path at fault."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from persisty.errors import ValidationError


def spec_error(path: str, message: str) -> ValidationError:
    """The error of a spec field (or a value) at ``path``: ``"attrs.age.type: …"``."""
    return ValidationError(f"{path}: {message}", field=path)


def check_value(attr: Mapping[str, Any], value: Any, path: str) -> Any:
    """``value`` checked against the attribute spec ``attr`` (a default, a CSV cell …)
    and returned in its JSON form."""
    if value is None:
        if not attr["optional"]:
            raise spec_error(path, "may not be null")
        return None
    tp = attr["type"]
    ok: Callable[[Any], bool] = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "datetime": lambda v: isinstance(v, str) and _parses(dt.datetime.fromisoformat, v),
        "date": lambda v: isinstance(v, str) and _parses(dt.date.fromisoformat, v),
        "uuid": lambda v: isinstance(v, str) and _parses(uuid.UUID, v),
        "decimal": lambda v: isinstance(v, str | int) and _parses(decimal.Decimal, str(v)),
        "bytes": lambda v: isinstance(v, str),
        "enum": lambda v: v in attr.get("values", ()),
        "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, dict),
        "any": lambda v: True,
    }[tp]
    if not ok(value):
        raise spec_error(path, f"{str(value)[:50]!r} is not a valid {tp}")
    if tp == "list":
        for i, v in enumerate(value):
            check_value(attr["items"], v, f"{path}.{i}")
    if tp == "dict" and "attrs" in attr:
        for k, v in value.items():
            if k not in attr["attrs"]:
                raise spec_error(f"{path}.{k}", "is not an attribute")
            check_value(attr["attrs"][k], v, f"{path}.{k}")
    if isinstance(value, str | list | bytes):
        if "min_length" in attr and len(value) < attr["min_length"]:
            raise spec_error(path, f"is shorter than {attr['min_length']}")
        if "max_length" in attr and len(value) > attr["max_length"]:
            raise spec_error(path, f"is longer than {attr['max_length']}")
    if "pattern" in attr and isinstance(value, str) and not re.search(attr["pattern"], value):
        raise spec_error(path, f"does not match {attr['pattern']!r}")
    if tp in ("int", "float"):
        for c, test in (
            ("ge", value >= attr.get("ge", value)),
            ("le", value <= attr.get("le", value)),
            ("gt", "gt" not in attr or value > attr["gt"]),
            ("lt", "lt" not in attr or value < attr["lt"]),
        ):
            if not test:
                raise spec_error(path, f"{value!r} violates {c}={attr[c]!r}")
    return value


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except (ValueError, TypeError, ArithmeticError):
        return False
    return True

"""The GraphQL types of attribute kinds: scalars, names and the edit-op enum."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import msgspec
from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLString,
)

from persisty.model import AttrMeta
from persisty.query import Op


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _scalar(name: str, description: str) -> GraphQLScalarType:
    return GraphQLScalarType(
        name, description=description, serialize=_text, parse_value=lambda v: v
    )


DATETIME = _scalar("DateTime", "An ISO 8601 date and time (UTC)")
DATE = _scalar("Date", "An ISO 8601 date")
UUID = _scalar("UUID", "A UUID in its text form")
DECIMAL = _scalar("Decimal", "A decimal number as a string")
BYTES = _scalar("Bytes", "Binary data, base64")
ENUM = _scalar("EnumValue", "The value of an enumeration")
JSON = GraphQLScalarType(
    "JSON",
    description="Any JSON value",
    serialize=lambda v: msgspec.to_builtins(v),
    parse_value=lambda v: v,
)

KIND_TYPES: dict[str, Any] = {
    "str": GraphQLString,
    "int": GraphQLInt,
    "float": GraphQLFloat,
    "bool": GraphQLBoolean,
    "datetime": DATETIME,
    "date": DATE,
    "uuid": UUID,
    "decimal": DECIMAL,
    "bytes": BYTES,
    "enum": ENUM,
}


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


def pascal(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def type_of(a: AttrMeta) -> Any:
    if a.kind in KIND_TYPES:
        return KIND_TYPES[a.kind]
    if a.kind == "list" and a.item_kind in KIND_TYPES:
        return GraphQLList(KIND_TYPES[a.item_kind])
    return JSON


def field_type(a: AttrMeta) -> Any:
    t = type_of(a)
    return t if a.optional else GraphQLNonNull(t)


FILTER_OP = GraphQLEnumType(
    "FilterOp",
    {op.value: op.value for op in Op},
    description="A comparison operator (as in REST's attribute__op=value)",
)
PATH_FILTER = GraphQLInputObjectType(
    "PathFilter",
    {
        "path": GraphQLInputField(
            GraphQLNonNull(GraphQLString),
            description='an attribute or a path into one: "spot.city", "visits[0].rank", '
            '"/extra/a.b" (JSON Pointer, for dict keys that are not identifiers)',
        ),
        "op": GraphQLInputField(FILTER_OP, default_value="eq"),
        "value": GraphQLInputField(JSON, description="coerced to the type at the path"),
    },
    description="One comparison on a nested path, as REST's ?spot.city__ne=Osaka",
)

EDIT_OP = GraphQLEnumType(
    "EditOp", {"create": "create", "update": "update", "patch": "patch", "delete": "delete"}
)

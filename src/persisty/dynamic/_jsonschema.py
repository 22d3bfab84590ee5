"""A documented subset of JSON Schema as a store definition.

Accepted keywords: ``type`` (``string``, ``integer``, ``number``, ``boolean``, ``array``,
``object``, and ``null`` beside one of them), ``format`` (``date``, ``date-time``, ``uuid``),
``enum`` (of strings), ``required``, ``minLength``/``maxLength``, ``pattern``, ``minimum``/
``maximum``/``exclusiveMinimum``/``exclusiveMaximum``, ``items``, ``minItems``/``maxItems``,
nested ``properties``, ``default``, ``description``, ``title`` and ``additionalProperties:
false`` at the top. Anything else (``oneOf``, ``$ref``, ``allOf`` …) is refused with a
``ValidationError`` naming where it is. A property that is not ``required`` and has no
``default`` becomes an optional attribute (``null`` when absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from persisty.errors import ValidationError

_FORMATS = {"date": "date", "date-time": "datetime", "uuid": "uuid"}
_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
}
_COMMON = frozenset({"type", "description", "title", "default", "enum"})
_BY_TYPE = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset(),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "object": frozenset({"properties", "required", "additionalProperties"}),
}
_RENAMED = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "pattern": "pattern",
}


def _err(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", field=path)


def spec_from_json_schema(
    name: str, schema: Any, key: str | list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A definition (persisty's spec, not yet validated) from a JSON Schema of the items.

    Example::

        from persisty.dynamic import spec_from_json_schema

        spec_from_json_schema("tasks", {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "done": {"type": "boolean", "default": False}}})
    """
    if not isinstance(schema, Mapping):
        raise _err("schema", "must be an object")
    if schema.get("type", "object") != "object":
        raise _err("schema.type", "the top level must be an object")
    if schema.get("additionalProperties", False) is not False:
        raise _err(
            "schema.additionalProperties", "must be false (items hold only the declared attributes)"
        )
    attrs = _properties(schema, "schema")
    spec: dict[str, Any] = {"name": name, "attrs": attrs, **extra}
    if key is not None:
        spec["key"] = key
    if isinstance(schema.get("description"), str):
        spec.setdefault("description", schema["description"])
    return spec


def _properties(schema: Mapping[str, Any], path: str) -> dict[str, Any]:
    _only(schema, _COMMON | _BY_TYPE["object"], path)
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        raise _err(f"{path}.properties", "must be a non-empty object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _err(f"{path}.required", "must be a list of property names")
    for r in required:
        if r not in props:
            raise _err(f"{path}.required", f"{r!r} is not a property")
    return {
        name: _property(sub, f"{path}.properties.{name}", name in required)
        for name, sub in props.items()
    }


def _only(schema: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    for k in schema:
        if k not in allowed:
            raise _err(f"{path}.{k}", "is not supported (see the documented JSON Schema subset)")


def _property(schema: Any, path: str, required: bool) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise _err(path, "must be an object")
    raw_type = schema.get("type")
    nullable = False
    if isinstance(raw_type, list):
        kinds = [t for t in raw_type if t != "null"]
        nullable = len(kinds) != len(raw_type)
        if len(kinds) != 1:
            raise _err(f"{path}.type", 'must be one type (and optionally "null")')
        raw_type = kinds[0]
    if raw_type is None and "enum" in schema:
        raw_type = "string"
    if raw_type not in _TYPES:
        raise _err(f"{path}.type", f"must be one of {', '.join(_TYPES)}")
    _only(schema, _COMMON | _BY_TYPE[raw_type], path)
    attr: dict[str, Any] = {"type": _TYPES[raw_type]}
    if "format" in schema:
        if schema["format"] not in _FORMATS:
            raise _err(f"{path}.format", f"must be one of {', '.join(_FORMATS)}")
        attr["type"] = _FORMATS[schema["format"]]
    if "enum" in schema:
        values = schema["enum"]
        if raw_type != "string" or not isinstance(values, list):
            raise _err(f"{path}.enum", "is supported on strings only")
        nullable = nullable or None in values
        attr["type"] = "enum"
        attr["values"] = [v for v in values if v is not None]
    for k, v in schema.items():
        if k in _RENAMED:
            attr[_RENAMED[k]] = v
    if raw_type == "array" and "items" in schema:
        attr["items"] = _property(schema["items"], f"{path}.items", True)
    if raw_type == "object" and "properties" in schema:
        if schema.get("additionalProperties", True) is False:
            raise _err(f"{path}.additionalProperties", "nested objects are open")
        attr["attrs"] = _properties(schema, path)
    elif raw_type == "object":
        _only(schema, _COMMON, path)
    if isinstance(schema.get("description"), str):
        attr["description"] = schema["description"]
    if "default" in schema:
        attr["default"] = schema["default"]
    if nullable or (not required and "default" not in schema):
        attr["optional"] = True
    return attr


def spec_to_json_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema (the documented subset) of the items a normalized spec accepts on
    create: what ``persisty schema show`` prints."""
    props = {n: _schema_of(a) for n, a in spec["attrs"].items() if not a.get("generated")}
    required = [
        n
        for n, a in spec["attrs"].items()
        if not a.get("generated")
        and not a["optional"]
        and "default" not in a
        and not (a["type"] == "uuid" and n in spec["key"] and len(spec["key"]) == 1)
    ]
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


_BACK = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
    "date": "string",
    "datetime": "string",
    "uuid": "string",
    "enum": "string",
    "decimal": "string",
    "bytes": "string",
}


def _schema_of(attr: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attr["type"] != "any":
        t: Any = _BACK[attr["type"]]
        out["type"] = [t, "null"] if attr["optional"] else t
    for fmt, tp in _FORMATS.items():
        if attr["type"] == tp:
            out["format"] = fmt
    if attr["type"] == "enum":
        out["enum"] = [*attr["values"], None] if attr["optional"] else list(attr["values"])
    lengths = ("minItems", "maxItems") if attr["type"] == "list" else ("minLength", "maxLength")
    for k, v in zip(lengths, ("min_length", "max_length"), strict=True):
        if v in attr:
            out[k] = attr[v]
    for k, v in (
        ("minimum", "ge"),
        ("maximum", "le"),
        ("exclusiveMinimum", "gt"),
        ("exclusiveMaximum", "lt"),
        ("pattern", "pattern"),
    ):
        if v in attr:
            out[k] = attr[v]
    if attr["type"] == "list":
        out["items"] = _schema_of(attr["items"])
    if "attrs" in attr:
        out["properties"] = {n: _schema_of(a) for n, a in attr["attrs"].items()}
        req = [n for n, a in attr["attrs"].items() if not a["optional"] and "default" not in a]
        if req:
            out["required"] = req
    for k in ("default", "description"):
        if k in attr:
            out[k] = attr[k]
    return out

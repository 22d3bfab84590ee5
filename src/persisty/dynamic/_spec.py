"""Validating a store definition (persisty's own spec, given as a mapping) into its normal
form: every error is a ``ValidationError`` whose ``field`` is the path of the spec field at
fault (``attrs.age.type``, ``indexes.0``, ``key`` …)."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from typing import Any

from persisty.dynamic._security import normalize_policy
from persisty.dynamic._values import check_value
from persisty.dynamic._values import spec_error as _err

TYPES = (
    "str",
    "int",
    "float",
    "bool",
    "datetime",
    "date",
    "uuid",
    "decimal",
    "bytes",
    "enum",
    "list",
    "dict",
    "any",
)
SPEC_FIELDS = frozenset(
    {
        "name",
        "key",
        "attrs",
        "indexes",
        "label",
        "ttl",
        "policy",
        "encrypted",
        "description",
        "summary",
    }
)
ATTR_FIELDS = frozenset(
    {
        "type",
        "optional",
        "default",
        "generated",
        "items",
        "values",
        "attrs",
        "description",
        "min_length",
        "max_length",
        "pattern",
        "ge",
        "le",
        "gt",
        "lt",
        "expires",
        "creatable",
        "updatable",
        "readable",
        "sortable",
    }
)
LENGTH_CONSTRAINTS = ("min_length", "max_length")
BOUND_CONSTRAINTS = ("ge", "le", "gt", "lt")
GENERATED_TYPES = {"uuid": "uuid", "created": "datetime", "updated": "datetime", "sequence": "int"}

MAX_NAME = 40
MAX_ATTRS = 200
MAX_NESTING = 4
NAME = re.compile(r"[a-z][a-z0-9_]*")
ATTR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# names the serving layer, the catalog or common tooling use for themselves
RESERVED = frozenset(
    {
        "api",
        "admin",
        "auth",
        "docs",
        "files",
        "graphql",
        "health",
        "login",
        "logout",
        "openapi",
        "schema",
        "schemas",
        "static",
        "dynamic",
        "dynamic_definition",
        "dynamic_serial",
        "meta",
        "metrics",
        "null",
        "none",
        "true",
        "false",
        "self",
    }
)
RESERVED_ATTRS = frozenset({"etag", "meta", "key", "mro", "register"})


def check_name(name: Any, static: Iterable[str] = (), path: str = "name") -> str:
    """A store name: a lowercase identifier of at most 40 characters, no ``__``, not
    reserved and not the name of a static store."""
    if not isinstance(name, str):
        raise _err(path, "must be a string")
    if not NAME.fullmatch(name):
        raise _err(
            path,
            f"{name[:50]!r} is not a name (a lowercase letter, then lowercase "
            "letters, digits or _)",
        )
    if len(name) > MAX_NAME:
        raise _err(path, f"is longer than {MAX_NAME} characters")
    if "__" in name or name.endswith("_"):
        raise _err(path, f"{name!r} may not contain '__' or end with '_'")
    if name in RESERVED or keyword.iskeyword(name):
        raise _err(path, f"{name!r} is reserved")
    if name in set(static):
        raise _err(path, f"{name!r} is the name of a static store")
    return name


def normalize_spec(spec: Any, static: Iterable[str] = ()) -> dict[str, Any]:
    """The normal form of a definition: every field present, the key a list, indexes as
    ``{"attrs": [...], "unique": bool}``, ttl in seconds. Raises ``ValidationError`` naming
    the spec field at fault; the input is never changed.

    Example::

        from persisty.dynamic import normalize_spec

        normalize_spec({"name": "contacts", "attrs": {"id": {"type": "uuid"},
                                                      "email": {"type": "str"}}})
    """
    if not isinstance(spec, Mapping):
        raise _err("spec", "must be an object")
    unknown = [k for k in spec if k not in SPEC_FIELDS]
    if unknown:
        raise _err(
            str(unknown[0]),
            f"is not a field of a store definition (one of {', '.join(sorted(SPEC_FIELDS))})",
        )
    name = check_name(spec.get("name"), static)
    raw_attrs = spec.get("attrs")
    if not isinstance(raw_attrs, Mapping) or not raw_attrs:
        raise _err("attrs", "must be a non-empty object of attribute definitions")
    attrs = _attrs(raw_attrs, "attrs", 0)
    key = _key(spec.get("key"), attrs)
    for k in key:
        a = attrs[k]
        if a["type"] in ("list", "dict", "any", "float", "bool") or a["optional"]:
            raise _err(
                "key", f"{k!r} cannot be a key ({a['type']}{', optional' if a['optional'] else ''})"
            )
    indexes = _indexes(spec.get("indexes", []), attrs)
    label = spec.get("label")
    if label is not None and label not in attrs:
        raise _err("label", f"{label!r} is not an attribute")
    summary = spec.get("summary", [])
    if not isinstance(summary, list) or any(s not in attrs for s in summary):
        raise _err("summary", "must be a list of attribute names")
    ttl = _ttl(spec.get("ttl"), attrs)
    encrypted = spec.get("encrypted", [])
    if not isinstance(encrypted, list) or not all(isinstance(e, str) for e in encrypted):
        raise _err("encrypted", "must be a list of attribute names")
    for i, e in enumerate(encrypted):
        if e not in attrs:
            raise _err(f"encrypted.{i}", f"{e!r} is not an attribute")
        if e in key:
            raise _err(f"encrypted.{i}", f"{e!r} is the key and cannot be encrypted")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise _err("description", "must be a string")
    return {
        "name": name,
        "key": key,
        "attrs": attrs,
        "indexes": indexes,
        "label": label,
        "summary": list(summary),
        "ttl": ttl,
        "policy": normalize_policy(spec.get("policy"), attrs),
        "encrypted": list(encrypted),
        "description": description,
    }


def _key(raw: Any, attrs: Mapping[str, Any]) -> list[str]:
    if raw is None:
        if "id" not in attrs:
            raise _err("key", "name the key attribute(s): there is no attribute 'id'")
        return ["id"]
    key = [raw] if isinstance(raw, str) else raw
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise _err("key", "must be an attribute name or a list of them")
    for i, k in enumerate(key):
        if k not in attrs:
            raise _err("key" if len(key) == 1 else f"key.{i}", f"{k!r} is not an attribute")
    if len(set(key)) != len(key):
        raise _err("key", "names an attribute twice")
    return list(key)


def _indexes(raw: Any, attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _err("indexes", "must be a list")
    result = []
    for i, ix in enumerate(raw):
        path = f"indexes.{i}"
        unique = False
        names: Any
        if isinstance(ix, str):
            names = [ix]
        elif isinstance(ix, list):
            names = ix
        elif isinstance(ix, Mapping):
            extra = [k for k in ix if k not in ("attrs", "unique")]
            if extra:
                raise _err(f"{path}.{extra[0]}", "is not a field of an index")
            names = ix.get("attrs")
            unique = ix.get("unique", False)
            if not isinstance(unique, bool):
                raise _err(f"{path}.unique", "must be true or false")
        else:
            raise _err(path, "must be an attribute name, a list of them or {attrs, unique}")
        if not isinstance(names, list) or not names:
            raise _err(path, "needs at least one attribute")
        for j, n in enumerate(names):
            if not isinstance(n, str) or n not in attrs:
                raise _err(f"{path}.{j}" if len(names) > 1 else path, f"{n!r} is not an attribute")
            if attrs[n]["type"] in ("list", "dict", "any"):
                raise _err(path, f"{n!r} ({attrs[n]['type']}) cannot be indexed")
        if len(set(names)) != len(names):
            raise _err(path, "names an attribute twice")
        entry = {"attrs": list(names), "unique": unique}
        if entry in result:
            raise _err(path, "is declared twice")
        result.append(entry)
    return result


def _ttl(raw: Any, attrs: Mapping[str, Any]) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise _err("ttl", "must be a positive number of seconds")
    if not any(a.get("expires") for a in attrs.values()):
        raise _err("ttl", 'needs an optional datetime attribute with "expires": true')
    return int(raw) if float(raw).is_integer() else raw  # type: ignore[return-value]


def _attrs(raw: Mapping[str, Any], path: str, depth: int) -> dict[str, dict[str, Any]]:
    if depth > MAX_NESTING:
        raise _err(path, f"is nested deeper than {MAX_NESTING} levels")
    if len(raw) > MAX_ATTRS:
        raise _err(path, f"has more than {MAX_ATTRS} attributes")
    result: dict[str, dict[str, Any]] = {}
    for name, attr in raw.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not ATTR_NAME.fullmatch(name) or len(name) > 64:
            raise _err(
                where,
                f"{str(name)[:50]!r} is not an attribute name (a letter, then "
                "letters, digits or _; at most 64)",
            )
        if keyword.iskeyword(name) or name in RESERVED_ATTRS:
            raise _err(where, f"{name!r} is reserved")
        result[name] = _attr(attr, where, depth)
    expiring = [n for n, a in result.items() if a.get("expires")]
    if len(expiring) > 1:
        raise _err(f"{path}.{expiring[1]}.expires", "only one attribute can hold the expiry")
    return result


def _attr(raw: Any, path: str, depth: int) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise _err(path, 'must be an object with a "type" (or a type name)')
    unknown = [k for k in raw if k not in ATTR_FIELDS]
    if unknown:
        raise _err(f"{path}.{unknown[0]}", "is not a field of an attribute")
    tp = raw.get("type")
    if tp not in TYPES:
        raise _err(f"{path}.type", f"{str(tp)[:50]!r} is not a type (one of {', '.join(TYPES)})")
    out: dict[str, Any] = {"type": tp, "optional": _flag(raw, "optional", path, False)}
    for flag in ("creatable", "updatable", "readable", "sortable"):
        if flag in raw:
            out[flag] = _flag(raw, flag, path, True)
    if raw.get("description") is not None:
        if not isinstance(raw["description"], str):
            raise _err(f"{path}.description", "must be a string")
        out["description"] = raw["description"]
    if tp == "enum":
        values = raw.get("values")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
            or len(set(values)) != len(values)
        ):
            raise _err(f"{path}.values", "an enum needs a list of distinct, non-empty strings")
        out["values"] = list(values)
    elif "values" in raw:
        raise _err(f"{path}.values", "applies to enums only")
    if tp == "list":
        items = raw.get("items", {"type": "any"})
        out["items"] = _attr(items, f"{path}.items", depth + 1)
        if out["items"]["type"] == "list":
            raise _err(f"{path}.items.type", "a list of lists is not supported")
        if out["items"]["optional"] or "default" in out["items"]:
            raise _err(f"{path}.items", "list elements take no optional or default")
    elif "items" in raw:
        raise _err(f"{path}.items", "applies to lists only")
    if tp == "dict" and "attrs" in raw:
        nested = raw["attrs"]
        if not isinstance(nested, Mapping) or not nested:
            raise _err(f"{path}.attrs", "must be a non-empty object of attributes")
        out["attrs"] = _attrs(nested, f"{path}.attrs", depth + 1)
    elif "attrs" in raw:
        raise _err(f"{path}.attrs", "applies to dicts only")
    _constraints(raw, out, path)
    generated = raw.get("generated")
    if generated is not None:
        if generated not in GENERATED_TYPES:
            raise _err(f"{path}.generated", f"must be one of {', '.join(GENERATED_TYPES)}")
        if GENERATED_TYPES[generated] != tp:
            raise _err(
                f"{path}.generated", f"{generated!r} needs type {GENERATED_TYPES[generated]!r}"
            )
        if "default" in raw:
            raise _err(f"{path}.default", "a generated attribute takes no default")
        out["generated"] = generated
    if raw.get("expires"):
        if tp != "datetime" or not out["optional"] or generated:
            raise _err(f"{path}.expires", "needs an optional, not generated datetime")
        out["expires"] = True
    if "default" in raw:
        out["default"] = check_value(out, raw["default"], f"{path}.default")
    return out


def _flag(raw: Mapping[str, Any], name: str, path: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise _err(f"{path}.{name}", "must be true or false")
    return value


def _constraints(raw: Mapping[str, Any], out: dict[str, Any], path: str) -> None:
    tp = out["type"]
    for c in LENGTH_CONSTRAINTS:
        if c in raw:
            if tp not in ("str", "bytes", "list"):
                raise _err(f"{path}.{c}", f"applies to str, bytes and list, not {tp}")
            v = raw[c]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise _err(f"{path}.{c}", "must be a non-negative integer")
            out[c] = v
    if "min_length" in out and "max_length" in out and out["min_length"] > out["max_length"]:
        raise _err(f"{path}.min_length", "is greater than max_length")
    if "pattern" in raw:
        if tp != "str":
            raise _err(f"{path}.pattern", "applies to str only")
        p = raw["pattern"]
        if not isinstance(p, str) or len(p) > 1000:
            raise _err(f"{path}.pattern", "must be a regular expression (at most 1000 chars)")
        try:
            re.compile(p)
        except re.error as e:
            raise _err(f"{path}.pattern", f"is not a regular expression ({e})") from None
        out["pattern"] = p
    for c in BOUND_CONSTRAINTS:
        if c in raw:
            if tp not in ("int", "float", "decimal"):
                raise _err(f"{path}.{c}", f"applies to int, float and decimal, not {tp}")
            v = raw[c]
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or v != v
                or v in (float("inf"), float("-inf"))
            ):
                raise _err(f"{path}.{c}", "must be a finite number")
            if tp == "int" and not float(v).is_integer():
                raise _err(f"{path}.{c}", "must be an integer on an int")
            out[c] = int(v) if tp == "int" else v
    # both bounds on one side: the tighter one is the constraint (as in JSON Schema)
    if "ge" in out and "gt" in out:
        del out["ge" if out["gt"] >= out["ge"] else "gt"]
    if "le" in out and "lt" in out:
        del out["le" if out["lt"] <= out["le"] else "lt"]

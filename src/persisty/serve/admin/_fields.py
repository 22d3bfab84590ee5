"""Attributes as the admin shows and edits them: a widget per kind, values formatted for
reading and for inputs (datetimes in the viewer's zone), and form text parsed back into the
values the store validates (datetimes typed in the viewer's zone stored as UTC)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import msgspec

from persisty.errors import ValidationError
from persisty.model import AttrMeta, StoreMeta

UTC = dt.UTC
LARGE_TEXT = 200
"""Strings that may be longer than this are edited in a textarea."""
LIST_TEXT = 2000
"""Strings that may be longer than this are left out of lists (shorter ones are cut)."""
CELL_CHARS = 80

_NUMBER_KINDS = frozenset({"int", "float", "decimal"})


@dataclass
class Widget:
    """One form field."""

    attr: AttrMeta
    kind: str
    """text textarea number checkbox boolean datetime date select lines json relation."""
    required: bool
    readonly: bool = False
    html: dict[str, str] = field(default_factory=dict)
    """Constraint attributes for the input (``maxlength``, ``min``, ``pattern`` …)."""
    options: list[str] = field(default_factory=list)
    suggest: str | None = None
    """For relation pickers: the store whose keys are suggested."""
    note: str | None = None

    @property
    def name(self) -> str:
        return self.attr.name


def is_large(a: AttrMeta) -> bool:
    """Whether a list page leaves the attribute out (long text, binary, nested data)."""
    if a.kind in ("bytes", "dict", "struct", "any"):
        return True
    if a.kind == "list" and a.item_kind not in ("str", "int", "enum"):
        return True
    return a.kind == "str" and int(a.constraints.get("max_length", 0)) > LIST_TEXT


def filterable(a: AttrMeta) -> bool:
    return a.kind in ("str", "int", "float", "decimal", "bool", "datetime", "date", "uuid", "enum")


def widget_kind(a: AttrMeta, relation: str | None) -> str:
    if relation is not None:
        return "relation"
    if a.kind == "str":
        return "textarea" if int(a.constraints.get("max_length", 0)) > LARGE_TEXT else "text"
    if a.kind in _NUMBER_KINDS:
        return "number"
    if a.kind == "bool":
        return "boolean" if a.optional else "checkbox"
    if a.kind in ("datetime", "date"):
        return a.kind
    if a.kind == "enum":
        return "select"
    if a.kind == "list" and a.item_kind in ("str", "int", "float", "uuid", "date", "enum"):
        return "lines"
    if a.kind in ("uuid", "bytes"):
        return "text"
    return "json"


def _html_constraints(a: AttrMeta, kind: str) -> dict[str, str]:
    c = a.constraints
    out: dict[str, str] = {}
    if kind in ("text", "textarea", "relation"):
        if "max_length" in c:
            out["maxlength"] = str(c["max_length"])
        if "min_length" in c:
            out["minlength"] = str(c["min_length"])
        html_pattern = _html_pattern(str(c["pattern"])) if "pattern" in c else None
        if html_pattern is not None and kind != "textarea":
            out["pattern"] = html_pattern
    if kind == "number":
        for key, attr in (("ge", "min"), ("le", "max")):
            if key in c:
                out[attr] = str(c[key])
        out["step"] = "1" if a.kind == "int" else "any"
    if kind == "datetime":
        out["step"] = "1"
    if a.kind == "uuid":
        out["pattern"] = "[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}"
    return out


def _html_pattern(pattern: str) -> str | None:
    """The Python ``pattern`` as an HTML ``pattern`` (which matches the whole value, as a
    JavaScript ``v``-flag expression), or ``None`` when it cannot be said safely (the server
    checks it either way)."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        return None  # the server searches for an unanchored pattern; HTML matches it whole
    pattern = pattern[1:-1]
    if "(?" in pattern or "|" in pattern or "\\A" in pattern or "\\Z" in pattern:
        return None
    out: list[str] = []
    i, n, in_class, start = 0, len(pattern), False, 0
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if not in_class:
            if c == "[":
                in_class, start = True, len(out) + 1
                if pattern.startswith("[^", i):
                    out.append("[^")
                    i += 2
                    start += 1
                    continue
            out.append(c)
        elif c == "]" and len(out) > start:
            in_class = False
            out.append(c)
        elif c == "-" and (len(out) == start or pattern[i + 1 : i + 2] == "]"):
            out.append("\\-")  # a literal hyphen at an end of the class
        elif c in "()[]{}/|&!#%,:;<=>@`~" + "-" and c != "-":
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return None if in_class else "".join(out)


def widgets(
    meta: StoreMeta,
    shape: str,
    *,
    relations: dict[str, str],
    writable: Any,
    forced: set[str],
    readable: set[str],
) -> list[Widget]:
    """The fields of the ``create`` or ``update`` form, from the shape's JSON Schema."""
    schema = meta.json_schema("create" if shape == "create" else "update")
    props = schema["properties"]
    required = set(schema.get("required", []))
    out: list[Widget] = []
    for a in meta.attrs:
        if a.name in forced:
            continue
        editable = a.name in props and writable(a.name)
        key = a.name in meta.key.attrs
        if shape == "create" and not editable:
            continue
        if shape == "update" and a.name not in readable:
            continue
        kind = widget_kind(a, relations.get(a.name))
        w = Widget(
            a,
            kind,
            required=(
                a.name in required and not a.optional and shape == "create" and a.generated is None
            ),
            html=_html_constraints(a, kind),
            suggest=relations.get(a.name),
        )
        if shape == "update" and (
            key or not editable or a.generated in ("created", "updated", "sequence")
        ):
            w.readonly = True
        if a.kind == "enum" and a.enum_type is not None:
            w.options = [str(m.value) for m in a.enum_type]
        if a.generated == "uuid" or (
            shape == "create" and a.kind == "uuid" and a.name not in required
        ):
            w.note = "left empty, one is generated"
        out.append(w)
    return out


# ---- reading ----------------------------------------------------------------------------


def display(a: AttrMeta, value: Any, zone: zoneinfo.ZoneInfo, *, cell: bool = False) -> str:
    """``value`` as text for a reader (lists and details)."""
    if value is None:
        return ""
    if a.kind == "bool" or isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        local = value.astimezone(zone)
        return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or zone.key)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"{len(value):,} bytes"
    if hasattr(value, "value") and a.kind == "enum":
        return str(value.value)
    if isinstance(value, list) and a.item_kind in ("str", "int", "enum"):
        text = ", ".join(str(msgspec.to_builtins(v)) for v in value)
    elif isinstance(value, str):
        text = value
    elif a.kind in ("int", "float", "decimal", "uuid"):
        text = str(value)
    else:
        text = json.dumps(msgspec.to_builtins(value), ensure_ascii=False, sort_keys=True)
    if cell and len(text) > CELL_CHARS:
        return text[: CELL_CHARS - 1] + "…"
    return text


def input_value(w: Widget, value: Any, zone: zoneinfo.ZoneInfo) -> str:
    """``value`` as the text of ``w``'s input."""
    if value is None:
        return ""
    if w.kind == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
    if w.kind == "lines" and isinstance(value, list):
        return "\n".join(str(msgspec.to_builtins(v)) for v in value)
    if w.kind == "json":
        return json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    b = msgspec.to_builtins(value)
    return b if isinstance(b, str) else json.dumps(b)


# ---- parsing ----------------------------------------------------------------------------


class Missing:
    """An empty input of an attribute the form may leave out (so it is not sent)."""


MISSING = Missing()


def parse(w: Widget, raw: list[str] | None, zone: zoneinfo.ZoneInfo) -> Any:
    """The value of ``w`` in the submitted ``raw`` values (``ValidationError`` naming it)."""
    a = w.attr
    if w.kind == "checkbox":
        return "true" in (raw or [])
    text = (raw or [""])[-1]
    if w.kind in ("textarea", "lines", "json"):
        text = text.replace("\r\n", "\n")
    if text.strip() == "":
        if a.optional:
            return None
        if w.required:
            raise ValidationError(f"{a.name} is required", field=a.name)
        if a.kind == "str" and w.kind in ("text", "textarea", "relation"):
            return text  # an empty string is a value (the attribute's constraints decide)
        return MISSING  # the attribute's default applies
    if w.kind == "boolean":
        if text not in ("true", "false"):
            raise ValidationError(f"{a.name}: choose yes or no", field=a.name)
        return text == "true"
    if w.kind == "number":
        try:
            if a.kind == "int":
                return int(text.strip())
            if a.kind == "decimal":
                return text.strip()
            return float(text.strip())
        except ValueError:
            raise ValidationError(f"{a.name}: {text!r} is not a number", field=a.name) from None
    if w.kind == "datetime":
        return to_utc_text(text, zone, a.name)
    if w.kind == "lines":
        return [line.strip() for line in text.split("\n") if line.strip()]
    if w.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationError(
                f"{a.name}: not valid JSON ({e.msg} at line {e.lineno})", field=a.name
            ) from None
    return text


def to_utc_text(text: str, zone: zoneinfo.ZoneInfo, name: str) -> str:
    """A ``datetime-local`` value typed in ``zone`` as an ISO instant in UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{name}: {text!r} is not a date and time", field=name) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
        # a wall time skipped by a DST change does not exist: say so instead of guessing
        if value.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value.replace(
            tzinfo=None
        ):
            raise ValidationError(
                f"{name}: {text} does not exist in {zone.key} (a clock change skips it)", field=name
            )
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def text_for_filter(a: AttrMeta, text: str, zone: zoneinfo.ZoneInfo) -> str:
    """A filter panel value as the query language reads it (local datetimes to UTC)."""
    if a.kind == "datetime" and text and "T" in text and not _aware(text):
        return to_utc_text(text, zone, a.name)
    return text


def _aware(text: str) -> bool:
    return text.endswith("Z") or "+" in text[10:] or text[10:].count("-") > 0


def local_for_filter(a: AttrMeta, text: str, zone: zoneinfo.ZoneInfo) -> str:
    """A filter value from the URL as the panel's input shows it (UTC to local)."""
    if a.kind != "datetime" or not text:
        return text
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")

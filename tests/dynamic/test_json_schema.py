"""A JSON Schema definition round-trips: the generated class's ``json_schema("create")``
accepts and rejects exactly the documents the input schema does (a property test over the
documented subset in its canonical form: a property is either required, or optional and
nullable)."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import persisty
from persisty.dynamic import catalog, spec_from_json_schema, spec_to_json_schema
from persisty.errors import ValidationError

PATTERNS = ["^[a-z]*$", "x", "^[0-9]{2}"]
CHECKER = jsonschema.FormatChecker()


def _scalar() -> st.SearchStrategy[dict[str, Any]]:
    string = st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "minLength": st.integers(0, 3),
            "maxLength": st.integers(3, 6),
            "pattern": st.sampled_from(PATTERNS),
        },
    )
    formatted = st.sampled_from(["date", "date-time", "uuid"]).map(
        lambda f: {"type": "string", "format": f}
    )
    enum = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3, unique=True).map(
        lambda v: {"type": "string", "enum": v}
    )
    number = st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-5, 0),
            "maximum": st.integers(1, 5),
            "exclusiveMinimum": st.integers(-8, -6),
            "exclusiveMaximum": st.integers(6, 8),
        },
    )
    return st.one_of(string, formatted, enum, number, st.just({"type": "boolean"}))


def _property(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    array = st.builds(
        lambda items, lo: {"type": "array", "items": items, **lo},
        _scalar(),
        st.sampled_from([{}, {"minItems": 1}, {"maxItems": 2}]),
    )
    choices = [_scalar(), array]
    if depth < 1:
        choices.append(_object(depth + 1, top=False))
    return st.one_of(*choices)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["type"] = [schema.get("type", "string"), "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


@st.composite
def _object(draw: st.DrawFn, depth: int = 0, top: bool = True) -> dict[str, Any]:
    names = draw(
        st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=4, unique=True)
    )
    props: dict[str, Any] = {"id": {"type": "string"}} if top else {}
    required = ["id"] if top else []
    for n in names:
        schema = draw(_property(depth))
        if draw(st.booleans()):
            required.append(n)
            props[n] = schema
        else:
            props[n] = _nullable(schema)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    if top:
        out["additionalProperties"] = False
    return out


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-9, 9),
    st.floats(-9, 9, allow_nan=False),
    st.sampled_from(
        [
            "",
            "a",
            "b",
            "xx",
            "abcdefg",
            "12ab",
            "2024-01-02",
            "2024-13-40",
            "2024-01-02T03:04:05Z",
            "2024-01-02 03:04",
            "not-a-uuid",
            "9f8b8a2e-6f0e-4d38-9d8a-0a6d7f6c1e2b",
        ]
    ),
)


@st.composite
def _document(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name, sub in schema["properties"].items():
        if draw(st.integers(0, 5)) == 0:
            continue
        types = sub.get("type")
        kind = types[0] if isinstance(types, list) else types
        if kind == "array":
            doc[name] = draw(st.lists(_VALUES, max_size=3))
        elif kind == "object":
            doc[name] = draw(st.one_of(_document(sub), _VALUES))
        else:
            doc[name] = draw(_VALUES)
    if draw(st.integers(0, 9)) == 0:
        doc["extra"] = 1
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_schema_accepts_what_the_input_accepts(data: st.DataObject) -> None:
    schema = data.draw(_object(), label="schema")
    cat = catalog(persisty.connect("memory://"))
    cat.define_json_schema("things", schema, key="id")
    d = cat.get("things")
    generated = cat.class_of(d).__persisty__.json_schema("create")
    source = jsonschema.Draft202012Validator(schema, format_checker=CHECKER)
    made = jsonschema.Draft202012Validator(generated, format_checker=CHECKER)
    shown = spec_to_json_schema(d.spec)
    again = jsonschema.Draft202012Validator(shown, format_checker=CHECKER)
    for _ in range(8):
        doc = data.draw(_document(schema), label="document")
        verdict = source.is_valid(doc)
        assert made.is_valid(doc) == verdict, (doc, generated)
        assert again.is_valid(doc) == verdict, (doc, shown)
    store = cat.store("things")
    valid = data.draw(_document(schema), label="document to store")
    if source.is_valid(valid) and all(
        not (isinstance(v, float) and not v.is_integer()) for v in valid.values()
    ):
        store.create(valid)
        assert store.count() == 1


@pytest.mark.parametrize("keyword", ["oneOf", "anyOf", "allOf", "$ref", "not", "if"])
def test_unsupported_keywords_are_named(keyword: str) -> None:
    with pytest.raises(ValidationError) as e:
        spec_from_json_schema(
            "x", {"type": "object", "properties": {"id": {"type": "string", keyword: {}}}}
        )
    assert e.value.field == f"schema.properties.id.{keyword}"

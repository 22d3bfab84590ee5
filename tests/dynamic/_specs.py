"""Definitions the dynamic tests share: ``ITEM_SPEC`` is the conformance suite's ``Item``
written as a runtime definition."""

from __future__ import annotations

from typing import Any

ITEM_SPEC: dict[str, Any] = {
    "name": "item",
    "attrs": {
        "id": {"type": "uuid"},
        "owner": {"type": "str"},
        "title": {"type": "str", "max_length": 100},
        "priority": {"type": "int", "default": 0},
        "score": {"type": "float", "optional": True},
        "tags": {"type": "list", "items": {"type": "str"}, "default": []},
        "body": {"type": "str", "optional": True},
        "color": {"type": "enum", "values": ["red", "green", "blue"], "optional": True},
        "due": {"type": "date", "optional": True},
        "active": {"type": "bool", "default": True},
        "code": {"type": "str", "optional": True},
        "amount": {"type": "decimal", "optional": True},
        "created_at": {"type": "datetime", "generated": "created"},
        "updated_at": {"type": "datetime", "generated": "updated"},
    },
    "indexes": [["owner", "priority"], {"attrs": ["code"], "unique": True}, "score"],
}

CONTACTS: dict[str, Any] = {
    "name": "contacts",
    "key": "email",
    "attrs": {
        "email": {"type": "str", "max_length": 200},
        "name": {"type": "str", "optional": True},
        "age": {"type": "int", "optional": True, "ge": 0},
    },
    "indexes": ["name"],
}

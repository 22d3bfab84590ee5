"""The pure rules of file stores: keys, ranges, sniffing, content types, tokens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persisty.errors import ValidationError
from persisty.files import Limits, check_key, resolve_range, sniff
from persisty.files._content import decide_type
from persisty.files._model import seconds
from persisty.files._signing import Signer


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=60))
def test_a_valid_key_never_leaves_its_root(key: str) -> None:
    try:
        check_key(key)
    except ValidationError as e:
        assert e.code == "invalid_key" and e.field == "key"
        return
    parts = key.split("/")
    assert not key.startswith("/") and "" not in parts and "." not in parts
    assert ".." not in parts and "\\" not in key and "\x00" not in key
    assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in key)


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "/abs",
        "a//b",
        "a\x00b",
        "x" * 1025,
        "é" * 513,
        "",
        "a/",
        ".",
        "a\\b",
        "\ud800",
        7,
    ],
)
def test_bad_keys(key: object) -> None:
    with pytest.raises(ValidationError) as e:
        check_key(key)
    assert e.value.code == "invalid_key"


def test_good_keys() -> None:
    for key in ["a", "a/b/c.txt", "...", "a/.hidden", "x" * 1024, "日本/語"]:
        assert check_key(key) == key


@settings(max_examples=300)
@given(size=st.integers(0, 50), start=st.integers(-60, 60), end=st.none() | st.integers(-60, 60))
def test_resolve_range_is_python_slicing_or_invalid(size: int, start: int, end: int | None) -> None:
    data = bytes(range(size))
    try:
        s, e = resolve_range(size, start, end)
    except ValidationError as err:
        assert err.code == "invalid_range"
        return
    assert data[s:e] == data[start:end]


def test_sniff_and_decide() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff(b"plain text") is None
    limits = Limits()
    assert decide_type(None, b"hello", "a.json", None, limits) == "application/json"
    assert decide_type(None, b"hello", "a", None, limits) == "application/octet-stream"
    assert decide_type("image/jpg", b"\xff\xd8\xff\xe0", "a", None, limits) == "image/jpg"
    assert decide_type("image/png", b"x", "a", None, Limits(sniff=False)) == "image/png"
    with pytest.raises(ValidationError) as e:
        decide_type("image/png", b"\xff\xd8\xff", "a", None, limits)
    assert e.value.code == "content_type_mismatch"
    with pytest.raises(ValidationError) as e:
        decide_type("text/plain", b"x", "a", None, Limits(content_types=["image/*"]))
    assert e.value.code == "content_type_not_allowed"


def test_signed_tokens() -> None:
    signer = Signer(b"k")
    token = signer.sign("download", {"k": "a"})
    assert signer.verify("download", token) == {"k": "a"}
    for bad in [token + "x", "x" + token, token.replace(".", ""), None, "a.b"]:
        with pytest.raises(ValidationError):
            signer.verify("download", bad)
    with pytest.raises(ValidationError):
        signer.verify("upload", token)  # bound to its purpose
    with pytest.raises(ValidationError):
        Signer(b"other").verify("download", token)


def test_durations() -> None:
    from datetime import timedelta

    assert seconds(timedelta(minutes=2), 1) == 120 and seconds(None, 5) == 5
    with pytest.raises(ValidationError):
        seconds(-1, 1)

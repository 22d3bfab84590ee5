"""Field encryption (sync-only helpers): key rings, encrypted paths and the ciphertext format.

Used by the ``encrypted`` layer (``persisty.layers.encrypted._async`` and its sync twin).
A value is encrypted as the msgspec JSON of the value, so its type round-trips exactly, and
stored as a text envelope beside the id of the key that sealed it::

    pe1.<key id>.<base64url(nonce[12] + ciphertext + tag[16])>     AES-256-GCM, random nonce
    pd1.<key id>.<base64url(siv tag[16] + ciphertext)>             AES-SIV, deterministic

The associated data binds a ciphertext to the store, the item key and the concrete path (list
indexes and list lengths included), so a value copied to another item or field, or a list
reordered, shortened or truncated, fails to decrypt. Deterministic
ciphertexts are bound to the store and the path only (list indexes left out), which is what
makes equality search possible.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from persisty.errors import IntegrityError, PersistyError, ValidationError
from persisty.layers._derived import redeclared
from persisty.model import StoreMeta, meta_of, stored
from persisty.model._attr import AttrOptions, strip_optional

try:  # the crypto extra
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    HAVE_CRYPTO = True
except ImportError:  # pragma: no cover - reported when a layer is built
    HAVE_CRYPTO = False

KeyProvider = Callable[[str, str | None], tuple[str, bytes]]
"""``provider(path, key_id)`` returns ``(key_id, 32-byte key)``: with ``key_id=None`` the
key new values of ``path`` are sealed with, else the key with that id (``KeyError`` when it
is unknown). ``path`` is the declared path (``"address.city"``, ``"tags[]"``)."""

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RANDOM = "pe1"
_DETERMINISTIC = "pd1"
_NONCE = 12


class MissingKeyError(PersistyError):
    """The key a value was sealed with (or the current key) is not available.

    Example::

        try:
            notes.read(key)
        except MissingKeyError as e:
            print(e.field, e.key_id)
    """

    code = "missing_key"
    status = 500

    def __init__(
        self, message: str, *, field: str | None = None, key_id: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.key_id = key_id


def _as_key(key_id: str, key: bytes | str) -> bytes:
    if isinstance(key, str):
        try:
            key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"key {key_id!r}: not base64") from e
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise ValueError(f"key {key_id!r}: AES-256 needs a 32-byte key")
    return bytes(key)


class KeyRing:
    """Named 256-bit keys; ``current`` seals new values, every key opens old ones.

    ``current`` may be one id for every path or a mapping from path to id (``"*"`` for the
    rest). Keys are 32 bytes, or their urlsafe base64 text. A KeyRing is a key provider: any
    callable ``provider(path, key_id) -> (key_id, key)`` can be passed instead.

    Example::

        keys = KeyRing({"k1": old_key, "k2": new_key}, current="k2")
        secret = encrypted(db.store(Note), fields=["body"], keys=keys)
        secret.reencrypt()          # rewrite values still sealed with k1
    """

    def __init__(
        self, keys: Mapping[str, bytes | str], current: str | Mapping[str, str] | None = None
    ) -> None:
        if not keys:
            raise ValueError("a KeyRing needs at least one key")
        self._keys: dict[str, bytes] = {}
        for kid, key in keys.items():
            if not isinstance(kid, str) or not _KEY_ID.match(kid):
                raise ValueError(f"key id {kid!r}: letters, digits, _ or -, at most 64")
            self._keys[kid] = _as_key(kid, key)
        if current is None:
            current = list(self._keys)[-1]
        self._current = {"*": current} if isinstance(current, str) else dict(current)
        for kid in self._current.values():
            if kid not in self._keys:
                raise ValueError(f"current key {kid!r} is not in the ring")

    @staticmethod
    def new_key() -> bytes:
        """A fresh random 256-bit key."""
        return os.urandom(32)

    def key_ids(self, path: str) -> list[str]:
        """Every key id, the current one for ``path`` first."""
        current = self._current.get(path, self._current.get("*"))
        return [k for k in self._keys if k == current] + [k for k in self._keys if k != current]

    def __call__(self, path: str, key_id: str | None) -> tuple[str, bytes]:
        if key_id is None:
            key_id = self._current.get(path, self._current.get("*"))
            if key_id is None:
                raise KeyError(path)
        return key_id, self._keys[key_id]


# ---- paths ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldPath:
    """One encrypted path: ``segments`` are attribute/dict names and ``"[]"`` (each list
    element); ``slot`` is how the ciphertext is held in the stored item (``str``/``bytes``)."""

    text: str
    segments: tuple[str, ...]
    deterministic: bool
    slot: str
    leaf: Any

    @property
    def attr(self) -> str:
        """The top-level attribute the path is in."""
        return self.segments[0]

    @property
    def whole(self) -> bool:
        """The path is a whole top-level attribute."""
        return len(self.segments) == 1

    @property
    def elements(self) -> bool:
        """The path is each element of a top-level list attribute (``tags[]``)."""
        return self.segments[1:] == ("[]",)


def _split(path: str) -> list[str]:
    if not isinstance(path, str) or not path:
        raise ValidationError(f"not a field path: {path!r}", field="fields")
    if path.startswith("/"):  # a JSON Pointer: dict keys that are not identifiers
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        if not parts[0] or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", parts[0]):
            raise ValidationError(f"not a field path: {path!r}", field=path)
        return parts
    segments: list[str] = []
    for part in path.split("."):
        if part == "*":  # each value of a dict
            segments.append("*")
            continue
        name, brackets = part, 0
        while name.endswith("[]"):
            name, brackets = name[:-2], brackets + 1
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValidationError(f"not a field path: {path!r}", field=path)
        segments.append(name)
        segments.extend(["[]"] * brackets)
    return segments


def _step(concrete: str, name: str) -> str:
    """The concrete path one dict key or attribute further: ``a.b``, or ``a["x.y"]`` for a
    key that is not an identifier (so no two paths share a text)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f"{concrete}.{name}" if concrete else name
    return f"{concrete}[{json.dumps(name)}]"


def _hints(tp: Any) -> dict[str, Any] | None:
    if dataclasses.is_dataclass(tp) or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return typing.get_type_hints(tp)
    return None


def _is_list(tp: Any) -> bool:
    return (typing.get_origin(tp) or tp) in (list, tuple, set, frozenset)


def walk_type(root: Any, path: str) -> tuple[tuple[str, ...], Any]:
    """The normalized segments of ``path`` in the type ``root`` (list steps made explicit)
    and the type at its end; ``ValidationError`` naming the path when it does not exist."""
    segments = _split(path)
    tp: Any = root
    result: list[str] = []
    for seg in segments:
        tp = strip_optional(tp)[0]
        if tp is Any:
            result.append(seg)
            continue
        if seg != "[]" and _is_list(tp):  # implicit: a name after a list applies to elements
            result.append("[]")
            tp = strip_optional((typing.get_args(tp) or (Any,))[0])[0]
        if seg == "*":
            if (typing.get_origin(tp) or tp) is not dict:
                raise ValidationError(
                    f"{path}: {'.'.join(result) or 'it'} is not a dict", field=path
                )
            tp = (typing.get_args(tp) or (Any, Any))[1]
        elif seg == "[]":
            if not _is_list(tp):
                raise ValidationError(
                    f"{path}: {'.'.join(result) or 'it'} is not a list", field=path
                )
            tp = (typing.get_args(tp) or (Any,))[0]
        elif (typing.get_origin(tp) or tp) is dict:
            tp = (typing.get_args(tp) or (Any, Any))[1]
        else:
            hints = _hints(tp)
            if hints is None or seg not in hints:
                raise ValidationError(f"{path}: no attribute {seg!r} there", field=path)
            tp = hints[seg]
        result.append(seg)
    return tuple(result), tp


def _slot_of(tp: Any) -> str | None:
    """How a ciphertext can be held where ``tp`` is declared: as text, bytes, or not."""
    base = strip_optional(tp)[0]
    if base is Any or base is str:
        return "str"
    if base in (bytes, bytearray):
        return "bytes"
    if typing.get_origin(base) in (typing.Union, types.UnionType) and str in typing.get_args(base):
        return "str"
    return None


# ---- the storage model ---------------------------------------------------------------------

SEALED_OF = "__persisty_sealed_of__"


def sealed_model(cls: type[Any], fields: Iterable[str], *, name: str | None = None) -> type[Any]:
    """A ``@stored`` class to keep ``cls``'s items in when some encrypted attributes are not
    text (``int``, ``date``, lists, nested values …): every top-level attribute named by a
    path in ``fields`` is stored as ciphertext text (``str``) or, for nested paths, as JSON.

    The storage class has the same store name as ``cls`` (override with ``name``), key and
    indexes; open its store and pass it to ``encrypted``, which reads and writes ``cls``.

    Example::

        Sealed = sealed_model(Patient, ["birthday", "visits[].notes"])
        patients = encrypted(db.store(Sealed), fields=["birthday", "visits[].notes"], keys=k)
        patients.create(Patient(id="p1", birthday=date(1990, 1, 2)))   # reads return Patient
    """
    meta = meta_of(cls)
    whole: set[str] = set()
    nested: set[str] = set()
    elements: set[str] = set()
    for path in fields:
        segments = _split(path.lstrip("="))
        meta.attr(segments[0])
        if len(segments) == 1:
            whole.add(segments[0])
        elif segments[1:] == ["[]"]:
            elements.add(segments[0])
        else:
            nested.add(segments[0])
    elements -= whole | nested
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__doc__": meta.description}
    annotations: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        a = meta.by_name[f.name]
        tp: Any = a.type
        metadata: Mapping[str, Any] = f.metadata
        if f.name in whole or f.name in nested or f.name in elements:
            if f.name in whole:
                tp = str | None if a.optional else str
            elif f.name in elements:
                tp = list[str] | None if a.optional else list[str]
            else:
                tp = Any
            opts = metadata.get("persisty", AttrOptions())
            metadata = {**metadata, "persisty": dataclasses.replace(opts, constraints={})}
        annotations[f.name] = tp
        value = redeclared(f, metadata)
        if value is not dataclasses.MISSING:
            namespace[f.name] = value
    namespace["__annotations__"] = annotations
    shadow = type(f"Sealed{cls.__name__}", (), namespace)
    for attr in meta.key.attrs:
        if attr in whole or attr in nested or attr in elements:
            raise ValidationError(f"{attr}: a key attribute cannot be encrypted", field=attr)
    result = stored(
        shadow,
        key=meta.key.attrs,
        indexes=meta.indexes,  # type: ignore[call-overload]
        name=name or meta.name,
        label=meta.label,
        summary=meta.summary,
        ttl=meta.ttl,
    )
    setattr(result, SEALED_OF, cls)
    return result  # type: ignore[no-any-return]


# ---- the cipher ------------------------------------------------------------------------------


class FieldCipher:
    """Seals and opens the encrypted paths of items (as JSON-compatible builtins).

    ``fields`` are paths into the outer model; a path written ``"=body"`` (or listed in
    ``deterministic``) is sealed deterministically. ``inner`` is the storage model.
    """

    def __init__(
        self,
        outer: StoreMeta,
        inner: StoreMeta,
        fields: Iterable[str],
        keys: KeyProvider,
        *,
        deterministic: Iterable[str] = (),
        context: str | None = None,
    ) -> None:
        if not HAVE_CRYPTO:  # pragma: no cover
            raise PersistyError(
                "field encryption needs the crypto extra: pip install 'persisty[crypto]'"
            )
        if not callable(keys):
            raise ValidationError("keys must be a KeyRing or a key provider callable", field="keys")
        self.outer = outer
        self.inner = inner
        self.keys = keys
        self.context = (context or outer.name).encode()
        det = {d.lstrip("=") for d in deterministic}
        self.paths: list[FieldPath] = []
        for raw in fields:
            text = raw.lstrip("=") if isinstance(raw, str) else raw
            outer_segments, leaf = walk_type(outer.cls, text)
            if outer_segments[0] not in outer.by_name:
                raise ValidationError(
                    f"{outer.name} has no attribute {outer_segments[0]!r}", field=text
                )
            if outer_segments[0] in outer.key.attrs:
                raise ValidationError(f"{text}: a key attribute cannot be encrypted", field=text)
            inner_segments, stored_tp = walk_type(inner.cls, text)
            slot = _slot_of(stored_tp)
            attr = inner.attr(inner_segments[0])
            if slot is None or (len(inner_segments) == 1 and attr.constraints):
                raise ValidationError(
                    f"{text}: {inner.name} stores it as {stored_tp!r}, which cannot hold "
                    "ciphertext; declare it str (without constraints) or keep the items in "
                    f"sealed_model({outer.cls.__name__}, fields)",
                    field=text,
                )
            canonical = ".".join(outer_segments).replace(".[]", "[]")
            self.paths.append(
                FieldPath(canonical, outer_segments, raw.startswith("=") or text in det, slot, leaf)
            )
        by_text = [p.text for p in self.paths]
        if len(set(by_text)) != len(by_text):
            raise ValidationError("a path is listed twice", field="fields")
        self.attrs = {p.attr for p in self.paths}
        for ix in outer.indexes:
            for p in self.paths:
                if ix.unique and p.attr in ix.attrs and not (p.whole and p.deterministic):
                    raise ValidationError(
                        f"{p.text}: a unique index needs deterministic encryption "
                        f"(write '={p.text}')",
                        field=p.text,
                    )
        self._aead: dict[tuple[str, bool], Any] = {}
        self._opening: dict[tuple[str, str], Any] = {}  # (path, key id) -> cipher, for reads

    # ---- keys -------------------------------------------------------------------------

    def _key(self, path: FieldPath, key_id: str | None) -> tuple[str, Any]:
        if key_id is not None:
            cached = self._opening.get((path.text, key_id))
            if cached is not None:
                return key_id, cached
        try:
            kid, key = self.keys(path.text, key_id)
        except KeyError:
            which = "no current key" if key_id is None else f"key {key_id!r} is not available"
            raise MissingKeyError(f"{path.text}: {which}", field=path.text, key_id=key_id) from None
        if not _KEY_ID.match(kid):
            raise ValidationError(f"key id {kid!r}: letters, digits, _ or -", field="keys")
        found = self._aead.get((kid, path.deterministic))
        if found is None:
            key = _as_key(kid, key)
            if path.deterministic:
                derived = HKDF(
                    hashes.SHA256(), 64, salt=None, info=b"persisty field encryption: AES-SIV"
                ).derive(key)
                found = AESSIV(derived)
            else:
                found = AESGCM(key)
            self._aead[(kid, path.deterministic)] = found
        if key_id is not None:
            self._opening[(path.text, key_id)] = found
        return kid, found

    def key_ids(self, path: FieldPath) -> list[str]:
        """The key ids a deterministic search must try: the provider's ``key_ids(path)``
        when it has one, else the current key's."""
        ids = getattr(self.keys, "key_ids", None)
        if callable(ids):
            return list(ids(path.text))
        return [self._key(path, None)[0]]

    # ---- one value --------------------------------------------------------------------

    def _ad(self, path: FieldPath, item_key: str, concrete: str, kid: str) -> bytes:
        if path.deterministic:
            return b"\x00".join((b"persisty/pd1", self.context, path.text.encode(), kid.encode()))
        return b"\x00".join(
            (b"persisty/pe1", self.context, item_key.encode(), concrete.encode(), kid.encode())
        )

    @staticmethod
    def _b64decode(text: str) -> bytes:
        return binascii.a2b_base64(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), strict_mode=True
        )

    def seal_value(
        self, path: FieldPath, value: Any, item_key: str, concrete: str, key_id: str | None = None
    ) -> str:
        """The envelope text of one JSON-compatible value."""
        kid, aead = self._key(path, key_id)
        plain = msgspec.json.encode(value)
        ad = self._ad(path, item_key, concrete, kid)
        if path.deterministic:
            body = aead.encrypt(plain, [ad])
            prefix = _DETERMINISTIC
        else:
            nonce = os.urandom(_NONCE)
            body = nonce + aead.encrypt(nonce, plain, ad)
            prefix = _RANDOM
        return f"{prefix}.{kid}.{base64.urlsafe_b64encode(body).decode().rstrip('=')}"

    def open_value(self, path: FieldPath, envelope: Any, item_key: str, concrete: str) -> Any:
        """The JSON-compatible value sealed in ``envelope``."""
        if not isinstance(envelope, str):
            raise IntegrityError(
                f"{concrete}: the stored value is not a ciphertext", field=path.text
            )
        parts = envelope.split(".")
        expected = _DETERMINISTIC if path.deterministic else _RANDOM
        if len(parts) != 3 or parts[0] != expected:
            raise IntegrityError(
                f"{concrete}: the stored value is not a {expected} ciphertext", field=path.text
            )
        kid = parts[1]
        _, aead = self._key(path, kid)
        try:
            body = self._b64decode(parts[2])
            ad = self._ad(path, item_key, concrete, kid)
            if path.deterministic:
                plain = aead.decrypt(body, [ad])
            else:
                plain = aead.decrypt(body[:_NONCE], body[_NONCE:], ad)
            return msgspec.json.decode(plain)
        except (InvalidTag, ValueError, binascii.Error, msgspec.DecodeError):
            raise IntegrityError(
                f"{concrete}: the ciphertext does not authenticate (tampered, or copied from "
                "another item or field)",
                field=path.text,
            ) from None

    def key_id_of(self, envelope: Any) -> str | None:
        """The key id in an envelope (``None`` if it is not one)."""
        if isinstance(envelope, str):
            parts = envelope.split(".")
            if len(parts) == 3 and parts[0] in (_RANDOM, _DETERMINISTIC):
                return parts[1]
        return None

    # ---- slots -------------------------------------------------------------------------

    @staticmethod
    def _to_slot(path: FieldPath, envelope: str) -> str:
        if path.slot == "bytes":  # builtins hold bytes as standard base64
            return base64.b64encode(envelope.encode()).decode()
        return envelope

    @staticmethod
    def _from_slot(path: FieldPath, value: Any) -> Any:
        if path.slot == "bytes" and isinstance(value, str):
            try:
                return base64.b64decode(value).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
        return value

    def slot_value(self, path: FieldPath, envelope: str) -> Any:
        """An envelope as the stored attribute holds it (for filters on whole attributes)."""
        return envelope.encode() if path.slot == "bytes" else envelope

    # ---- whole items (as builtins) ---------------------------------------------------------

    def _visit(
        self,
        node: Any,
        segments: Sequence[str],
        i: int,
        concrete: str,
        fn: Callable[[Any, str], Any],
    ) -> Any:
        if i == 0 and len(segments) == 1 and isinstance(node, dict):  # a whole attribute
            name = segments[0]
            value = node.get(name)
            if value is None:
                return node
            copy = dict(node)
            copy[name] = fn(value, name)
            return copy
        if node is None:
            return None
        if i == len(segments):
            return fn(node, concrete)
        seg = segments[i]
        if seg == "[]":
            if not isinstance(node, list):
                return node
            # the index and the list's length are both in the concrete path (and so in the
            # associated data): reordering, dropping or truncating elements is detected
            n = len(node)
            return [
                self._visit(x, segments, i + 1, f"{concrete}[{j}/{n}]", fn)
                for j, x in enumerate(node)
            ]
        if seg == "*":
            if not isinstance(node, dict):
                return node
            # bound to the concrete dict key: a value moved to another key does not open
            return {
                k: self._visit(v, segments, i + 1, _step(concrete, k), fn) for k, v in node.items()
            }
        if not isinstance(node, dict) or seg not in node:
            return node
        copy = dict(node)
        copy[seg] = self._visit(node[seg], segments, i + 1, _step(concrete, seg), fn)
        return copy

    def seal(
        self,
        data: dict[str, Any],
        item_key: str,
        only: Iterable[str] | None = None,
        key_ids: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """``data`` (an item as builtins) with its encrypted paths sealed; ``only`` limits
        it to some top-level attributes (for a patch)."""
        result = dict(data)
        for path in self.paths:
            if only is not None and path.attr not in only:
                continue

            def seal_one(value: Any, concrete: str, path: FieldPath = path) -> Any:
                return self._to_slot(path, self.seal_value(path, value, item_key, concrete))

            result = self._visit(result, path.segments, 0, "", seal_one)
        return result

    def open(self, data: dict[str, Any], item_key: str, legacy: bool = False) -> dict[str, Any]:
        """``data`` (a stored item as builtins) with its encrypted paths opened; with
        ``legacy`` a value that is no ciphertext is taken as plaintext (for migrations)."""
        result = data
        for path in self.paths:

            def open_one(value: Any, concrete: str, path: FieldPath = path) -> Any:
                envelope = self._from_slot(path, value)
                if legacy and self.key_id_of(envelope) is None:
                    return value
                return self.open_value(path, envelope, item_key, concrete)

            result = self._visit(result, path.segments, 0, "", open_one)
        return result

    def stale_key_ids(self, data: dict[str, Any]) -> set[str]:
        """Key ids in ``data`` that are not the current one for their path (and ``"?"`` for
        a value that is not a ciphertext at all)."""
        found: set[str] = set()
        for path in self.paths:
            current = self._key(path, None)[0]

            def look(
                value: Any, concrete: str, path: FieldPath = path, current: str = current
            ) -> Any:
                kid = self.key_id_of(self._from_slot(path, value))
                if kid != current:
                    found.add(kid or "?")
                return value

            self._visit(data, path.segments, 0, "", look)
        return found

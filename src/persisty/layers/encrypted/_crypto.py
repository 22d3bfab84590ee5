"""Field encryption (sync-only helpers): the cipher that seals and opens the encrypted paths.

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
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from persisty.errors import IntegrityError, PersistyError, ValidationError
from persisty.layers.encrypted._keys import KEY_ID_FORM, KeyProvider, MissingKeyError, as_key
from persisty.layers.encrypted._paths import FieldPath, slot_of, step, walk_type
from persisty.model import StoreMeta

try:  # the crypto extra
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    HAVE_CRYPTO = True
except ImportError:  # pragma: no cover - reported when a layer is built
    HAVE_CRYPTO = False

_RANDOM = "pe1"
_DETERMINISTIC = "pd1"
_NONCE = 12


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
            slot = slot_of(stored_tp)
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
        if not KEY_ID_FORM.match(kid):
            raise ValidationError(f"key id {kid!r}: letters, digits, _ or -", field="keys")
        found = self._aead.get((kid, path.deterministic))
        if found is None:
            key = as_key(kid, key)
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
                k: self._visit(v, segments, i + 1, step(concrete, k), fn) for k, v in node.items()
            }
        if not isinstance(node, dict) or seg not in node:
            return node
        copy = dict(node)
        copy[seg] = self._visit(node[seg], segments, i + 1, step(concrete, seg), fn)
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

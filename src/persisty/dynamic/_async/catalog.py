"""The catalog of runtime-defined stores (async; the sync twin is generated)."""

from __future__ import annotations

import builtins
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from persisty.dynamic._async.channel import AsyncChangeChannel
from persisty.dynamic._async.migration import backfill, fenced_copy
from persisty.dynamic._async.store import AsyncDynamicStore
from persisty.dynamic._classes import build_class, spec_digest, user_meta
from persisty.dynamic._jsonschema import spec_from_json_schema
from persisty.dynamic._models import (
    SERIAL_KEY,
    CatalogSerial,
    Definition,
    matched,
    next_generation,
    same_name,
)
from persisty.dynamic._order import laid_out, ordered
from persisty.dynamic._plan import Plan, plan_changes
from persisty.dynamic._report import MigrationReport
from persisty.dynamic._security import ADMIN_SCOPE, may_change, may_use, policy_of, require_admin
from persisty.dynamic._spec import normalize_spec
from persisty.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from persisty.layers import KeyRing, Principal, encrypted, secured
from persisty.model import StoreMeta, etag, meta_of
from persisty.store import AsyncDatabase, AsyncStore, Increment


@dataclass(slots=True)
class AsyncEntry:
    """A definition as this process knows it, with its class and the store of its data."""

    definition: Definition
    etag: str
    cls: type[Any]
    store: AsyncStore[Any]
    meta: StoreMeta
    """The class's metadata named as the user's store (what validation errors say)."""


@dataclass(slots=True)
class _State:
    """What every view of one catalog shares (principal views see the same definitions)."""

    entries: dict[str, AsyncEntry] = field(default_factory=dict)
    classes: dict[tuple[str, int, str], type[Any]] = field(default_factory=dict)
    serial: int | None = None
    checked: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)
    channel: AsyncChangeChannel | None = None


class AsyncCatalog:
    """Definitions of stores made at runtime, kept as items of a store in ``db``.

    Every process using the same database sees a change: at once where the engine can
    announce it (a Redis pub/sub channel, PostgreSQL ``LISTEN``/``NOTIFY``), and within
    ``staleness`` seconds anyway (every use polls a change counter at most that often).
    ``principal`` (``None``: this trusted process) is who acts: defining, altering and
    dropping need ``admin_scope``, and a principal sees the definitions it owns or that
    are shared with one of its scopes.
    ``static`` names static stores whose names a definition may not take; ``keys`` is the
    KeyRing for definitions with ``encrypted`` attributes.

    Example::

        import persisty.dynamic

        cat = persisty.dynamic.catalog(db)
        await cat.define({"name": "contacts", "key": "email",
                          "attrs": {"email": {"type": "str"}, "age": {"type": "int",
                                                                       "optional": True}}})
        contacts = await cat.store("contacts")
        await contacts.create({"email": "ann@example.com", "age": 41})
    """

    def __init__(
        self,
        db: AsyncDatabase,
        *,
        principal: Principal | None = None,
        static: Iterable[Any] = (),
        staleness: float = 1.0,
        admin_scope: str = ADMIN_SCOPE,
        keys: KeyRing | None = None,
        batch_size: int = 500,
        _state: _State | None = None,
    ) -> None:
        self.db = db
        self.principal = principal
        self.static = frozenset(s if isinstance(s, str) else meta_of(s).name for s in static)
        self.staleness = staleness
        self.admin_scope = admin_scope
        self.keys = keys
        self.batch_size = batch_size
        self.definitions: AsyncStore[Definition] = db.store(Definition)
        self._serials: AsyncStore[CatalogSerial] = db.store(CatalogSerial)
        self._state = _state if _state is not None else _State()
        if self._state.channel is None:
            self._state.channel = AsyncChangeChannel(db)

    def as_principal(self, principal: Principal | None) -> AsyncCatalog:
        """A view of this catalog for ``principal`` (sharing what this process knows)."""
        return AsyncCatalog(
            self.db,
            principal=principal,
            static=self.static,
            staleness=self.staleness,
            admin_scope=self.admin_scope,
            keys=self.keys,
            batch_size=self.batch_size,
            _state=self._state,
        )

    # ---- knowing the definitions ---------------------------------------------------------

    @property
    def serial(self) -> int | None:
        """The change counter this process last saw (``None`` before the first look)."""
        return self._state.serial

    @property
    def channel(self) -> str:
        """How other processes hear of this catalog's changes at once: ``"redis"``
        (pub/sub), ``"postgresql"`` (``LISTEN``/``NOTIFY``) or ``"polled"`` (only the
        counter, within ``staleness``)."""
        return self._state.channel.kind if self._state.channel is not None else "polled"

    async def refresh(self, force: bool = False) -> bool:
        """Reload the definitions when the change counter moved (or ``force``); return
        whether anything was reloaded. Called by every use at most once per ``staleness``."""
        st = self._state
        now = time.monotonic()
        counter = await self._serials.read(SERIAL_KEY)
        serial = counter.serial if counter is not None else 0
        if not force and serial == st.serial:
            st.checked = now
            return False
        entries = {}
        async for d in self.definitions.search_all():
            entries[d.name] = self._entry_of(ordered(d))
        with st.lock:
            st.entries, st.serial, st.checked = entries, serial, now
        return True

    async def fresh(self) -> None:
        """Look for changes when one was announced (Redis) or the last look is older than
        ``staleness``."""
        channel = self._state.channel
        announced = channel is not None and await channel.changed()
        if announced or time.monotonic() - self._state.checked >= self.staleness:
            await self.refresh()

    async def close(self) -> None:
        """Stop listening for announced changes (the database stays open)."""
        if self._state.channel is not None:
            await self._state.channel.close()

    def known(self) -> dict[str, AsyncEntry]:
        """Every definition (tombstones included) as this process last saw them, by name."""
        return self._state.entries

    async def _entry(self, name: str) -> AsyncEntry | None:
        await self.fresh()
        return self._state.entries.get(name)

    def _entry_of(self, d: Definition) -> AsyncEntry:
        cls = self.class_of(d)
        store: AsyncStore[Any] = self.db.evolve(cls)
        if d.spec.get("encrypted") and self.keys is not None:
            store = encrypted(store, fields=list(d.spec["encrypted"]), keys=self.keys)
        return AsyncEntry(d, etag(d), cls, store, user_meta(meta_of(cls), d.name))

    def class_of(self, d: Definition) -> type[Any]:
        """The generated ``@stored`` class of a definition (one per name and version)."""
        return self._class(d.spec, d.name, d.version, d.generation)

    def _class(
        self, spec: Mapping[str, Any], name: str, version: int, generation: int
    ) -> type[Any]:
        key = (name, version, spec_digest({**spec, "generation": generation}))
        found = self._state.classes.get(key)
        if found is None:
            try:
                found = build_class(spec, generation)
            except (TypeError, ValueError) as e:
                raise ValidationError(f"{name}: {e}", field="attrs") from None
            self._state.classes[key] = found
        return found

    async def _bump(self) -> None:
        try:
            await self._serials.patch(SERIAL_KEY, {"serial": Increment(1)})
        except NotFound:
            try:
                await self._serials.create(CatalogSerial(id=SERIAL_KEY, serial=1))
            except Conflict:
                await self._serials.patch(SERIAL_KEY, {"serial": Increment(1)})
        if self._state.channel is not None:
            await self._state.channel.publish()
        await self.refresh(force=True)

    async def _load(self, name: str, *, change: bool = False) -> Definition:
        """The stored definition (read now, not from what this process knows)."""
        d = await self.definitions.read(name) if isinstance(name, str) else None
        if d is not None:
            d = ordered(d)
        if (
            d is None
            or d.state == "dropped"
            or not may_use(d.owner, d.shared, self.principal, self.admin_scope)
        ):
            raise NotFound(f"there is no store {name!r}", field="name")
        if change and not may_change(d.owner, self.principal, self.admin_scope):
            raise Forbidden(f"changing {name!r} needs the {self.admin_scope!r} scope and ownership")
        return d

    def _normalize(self, spec: Any) -> dict[str, Any]:
        norm = normalize_spec(spec, self.static)
        if norm["encrypted"] and self.keys is None:
            raise ValidationError(
                "encrypted: needs catalog(db, keys=KeyRing(...))", field="encrypted"
            )
        return norm

    # ---- reading ---------------------------------------------------------------------------

    async def list(self) -> builtins.list[Definition]:
        """The live definitions this principal may see, by name."""
        await self.fresh()
        return sorted(
            (
                e.definition
                for e in self._state.entries.values()
                if e.definition.state != "dropped"
                and may_use(
                    e.definition.owner, e.definition.shared, self.principal, self.admin_scope
                )
            ),
            key=lambda d: d.name,
        )

    async def get(self, name: str) -> Definition:
        """The current definition of ``name`` (``NotFound`` when there is none or it is
        not visible); its etag is ``persisty.etag(definition)``."""
        return await self._load(name)

    async def store(self, name: str) -> AsyncStore[Any]:
        """The Store of ``name``'s items (under this catalog's principal, its policy)."""
        d = await self._load(name)
        entry = await self._entry(name)
        if entry is None or entry.definition.version < d.version:
            await self.refresh(force=True)
            entry = self._state.entries.get(name)
        if entry is None or entry.definition.state == "dropped":
            raise NotFound(f"there is no store {name!r}", field="name")
        store: AsyncStore[Any] = AsyncDynamicStore(self, entry)
        if self.principal is not None:
            store = secured(store, policy_of(entry.definition.spec), self.principal)
        return store

    async def plan(self, name: str, new_spec: Any) -> Plan:
        """The steps from ``name``'s current definition to ``new_spec``."""
        d = await self._load(name)
        norm = self._normalize(new_spec)
        same_name(name, norm)
        return plan_changes(d.spec, norm)

    # ---- changing ----------------------------------------------------------------------------

    async def define(self, spec: Any) -> Definition:
        """Define a new store from persisty's spec (a mapping); ``ValidationError`` naming
        the spec field when it is invalid (nothing is created), ``Conflict`` when the name
        is taken. A name that was dropped starts empty: its old rows never come back."""
        require_admin(self.principal, self.admin_scope, "defining a store")
        norm = self._normalize(spec)
        name = norm["name"]
        old = await self.definitions.read(name)
        if old is not None and old.state != "dropped":
            raise Conflict(f"{name!r} is already defined", field="name")
        owner = self.principal.subject if self.principal is not None else None
        if old is None:
            self._class(norm, name, 1, 1)
            saved = await self.definitions.create(
                laid_out(Definition(name=name, spec=norm, owner=owner))
            )
        else:
            generation = next_generation(old)
            self._class(norm, name, old.version + 1, generation)
            saved = await self.definitions.update(
                laid_out(
                    dataclasses.replace(
                        old,
                        version=old.version + 1,
                        generation=generation,
                        epoch=old.epoch + 1,
                        spec=norm,
                        state="live",
                        owner=owner,
                        shared=[],
                    )
                ),
                if_match=etag(old),
            )
        await self._bump()
        return ordered(saved)

    async def define_json_schema(
        self, name: str, schema: Any, key: str | builtins.list[str] | None = None, **extra: Any
    ) -> Definition:
        """Define a store from a JSON Schema of its items (the subset documented in
        ``docs/dynamic.md``); ``extra`` are further spec fields (``indexes``, ``policy`` …)."""
        return await self.define(spec_from_json_schema(name, schema, key, **extra))

    async def alter(self, name: str, new_spec: Any, *, if_match: str | None = None) -> Definition:
        """Apply additive changes online (new optional attributes or ones with a default,
        new indexes, relaxed constraints, ``int`` to ``float``); a destructive change is a
        ``Conflict`` naming its step (use :meth:`migrate`). ``if_match`` is the etag of the
        definition the change was planned on (``PreconditionFailed`` when it moved)."""
        require_admin(self.principal, self.admin_scope, "altering a store")
        d = await self._load(name, change=True)
        tag = matched(d, if_match)
        norm = self._normalize(new_spec)
        same_name(name, norm)
        plan = plan_changes(d.spec, norm)
        bad = [s for s in plan.steps if s.destructive]
        if bad:
            raise Conflict(
                f"{bad[0].path}: {bad[0].description} is destructive; use migrate()",
                field=bad[0].path,
            )
        if d.state == "fenced":
            raise Unavailable(f"{name} is being migrated")
        cls = self._class(norm, name, d.version + 1, d.generation)
        self.db.evolve(cls)
        await self.db.migrate()  # new columns and indexes, int columns widened to float
        saved = await self.definitions.update(
            laid_out(dataclasses.replace(d, version=d.version + 1, spec=norm)), if_match=tag
        )
        await self._bump()
        await backfill(self.db, cls, d.spec, norm)
        return ordered(saved)

    async def migrate(
        self,
        name: str,
        new_spec: Any,
        *,
        transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        if_match: str | None = None,
        skip_errors: bool = False,
    ) -> MigrationReport:
        """Change ``name`` to ``new_spec`` by copying its items into a new data generation:
        writes are refused (``Unavailable``) while reads continue, every item goes through
        ``transform`` (its JSON values; ``None`` skips it) and is validated, and the
        definition switches at once when every item was copied. An item that fails raises
        ``MigrationFailed`` with every row's error (the old version stays live) unless
        ``skip_errors``. The old items are kept until :meth:`gc`."""
        require_admin(self.principal, self.admin_scope, "migrating a store")
        d = await self._load(name, change=True)
        tag = matched(d, if_match)
        norm = self._normalize(new_spec)
        same_name(name, norm)
        return await fenced_copy(self, d, tag, norm, transform, skip_errors)

    async def share(
        self, name: str, scopes: Iterable[str], *, if_match: str | None = None
    ) -> Definition:
        """Let principals with any of ``scopes`` see and use ``name`` (its owner's call)."""
        d = await self._load(name, change=True)
        tag = matched(d, if_match)
        saved = await self.definitions.update(
            dataclasses.replace(d, shared=sorted(set(scopes))), if_match=tag
        )
        await self._bump()
        return ordered(saved)

    async def drop(self, name: str, *, if_match: str | None = None) -> None:
        """Remove ``name``'s items and keep a tombstone: defining the name again starts
        empty (a new data generation), and its earlier generations go with :meth:`gc`."""
        require_admin(self.principal, self.admin_scope, "dropping a store")
        d = await self._load(name, change=True)
        tag = matched(d, if_match)
        await self.definitions.update(dataclasses.replace(d, state="dropped"), if_match=tag)
        await self._bump()
        await self.db.drop(self.class_of(d))

    async def gc(self) -> builtins.list[str]:
        """Delete the items of retired data generations; return the stores emptied."""
        require_admin(self.principal, self.admin_scope, "collecting old data")
        done = []
        async for d in self.definitions.search_all():
            if not d.retired:
                continue
            for old in d.retired:
                cls = self._class(old["spec"], d.name, old["version"], old["generation"])
                await self.db.drop(cls)
                done.append(meta_of(cls).name)
            try:
                await self.definitions.update(dataclasses.replace(d, retired=[]), if_match=etag(d))
            except PreconditionFailed:
                continue  # changed meanwhile: the next gc() finishes it
        if done:
            await self._bump()
        return done

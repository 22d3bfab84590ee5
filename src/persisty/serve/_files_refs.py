"""``FileRef`` attributes of served items: writes check that the file exists for the caller
with that etag (422 naming the attribute), deletes apply ``on_delete`` (delete the file,
keep it, or 409 while it exists), and responses show each reference as ``{key, etag, size,
content_type, url, url_expires_at}``, signed for a whole page from one ``info_batch`` per
file store."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from starlette.requests import Request

from persisty.errors import Conflict, NotFound, PersistyError, PreconditionFailed, ValidationError
from persisty.files import FileInfo
from persisty.model import FileRef, StoreMeta
from persisty.serve._files_access import Access, FileMount, access, signed_url
from persisty.store import AsyncStore, AsyncWrappedStore, Edit, EditResult


def ref_attrs(meta: StoreMeta, mounts: Mapping[str, FileMount]) -> dict[str, FileMount]:
    """The ``FileRef`` attributes of ``meta`` and the file mount each refers to (an
    attribute naming a file store the app does not serve is an error at startup)."""
    found: dict[str, FileMount] = {}
    for a in meta.attrs:
        if a.files is None:
            continue
        mount = mounts.get(a.files)
        if mount is None:
            raise ValidationError(
                f"{meta.name}.{a.name} refers to file store {a.files!r}: "
                "give it in app(files={...})",
                field=a.name,
            )
        found[a.name] = mount
    return found


def _ref(value: Any, attr: str, meta: StoreMeta) -> FileRef | None:
    if value is None or isinstance(value, FileRef):
        return value
    try:
        return msgspec.convert(value, FileRef)
    except (msgspec.ValidationError, TypeError) as e:
        raise ValidationError(
            f'{meta.name}.{attr}: {e} (a file reference is {{"key": …, "etag": …}})', field=attr
        ) from None


class FileRefStore(AsyncWrappedStore[Any]):
    """The caller's view of a store with ``FileRef`` attributes (see the module)."""

    def __init__(
        self, inner: AsyncStore[Any], refs: dict[str, FileMount], api: Any, request: Request
    ) -> None:
        super().__init__(inner)
        self.refs = refs
        self._api = api
        self._request = request
        self._access: dict[str, Access | None] = {}

    def access(self, mount: FileMount) -> Access | None:
        """The caller's rights on ``mount`` (``None``: it may not use those files at all)."""
        if mount.name not in self._access:
            try:
                self._access[mount.name] = access(self._api, self._request, mount)
            except PersistyError:
                self._access[mount.name] = None
        return self._access[mount.name]

    def _values(self, data: Any) -> list[tuple[str, FileRef]]:
        out = []
        for attr in self.refs:
            if isinstance(data, Mapping):
                if attr not in data:
                    continue
                value = data[attr]
            else:
                value = getattr(data, attr, None)
            ref = _ref(value, attr, self.meta)
            if ref is not None:
                out.append((attr, ref))
        return out

    async def check(self, data: Any) -> None:
        """Every file ``data`` refers to exists for the caller with that etag."""
        wanted = self._values(data)
        for attr, ref in wanted:
            mount = self.refs[attr]
            try:
                info = (await mount.files.info_batch([ref.key]))[0]
            except ValidationError:
                info = None
            acc = self.access(mount)
            if info is None or acc is None or not acc.can("read", info) or (info.etag != ref.etag):
                raise ValidationError(
                    f"{self.meta.name}.{attr}: no file {ref.key!r} with "
                    f"etag {ref.etag!r} in {mount.name}",
                    field=attr,
                )

    async def create(self, item: Any) -> Any:
        await self.check(item)
        return await self.inner.create(item)

    async def update(
        self, item: Any, *, if_match: str | None = None, precondition: Any = None
    ) -> Any:
        await self.check(item)
        return await self.inner.update(item, if_match=if_match, precondition=precondition)

    async def put(self, item: Any, *, if_match: str | None = None) -> Any:
        await self.check(item)
        return await self.inner.put(item, if_match=if_match)

    async def patch(
        self,
        key: str,
        changes: Mapping[str, Any],
        *,
        if_match: str | None = None,
        precondition: Any = None,
    ) -> Any:
        await self.check(changes)
        return await self.inner.patch(key, changes, if_match=if_match, precondition=precondition)

    async def _before_delete(self, item: Any) -> list[tuple[FileMount, FileRef]]:
        """Refuse (409) while a ``block`` file exists; the files to delete afterwards."""
        doomed = []
        for attr, ref in self._values(item):
            mount = self.refs[attr]
            on_delete = self.meta.attr(attr).on_delete
            if on_delete == "block" and await mount.files.exists(ref.key):
                raise Conflict(
                    f"{self.meta.name}.{attr} still refers to file {ref.key!r}: "
                    "delete the file first",
                    field=attr,
                )
            if on_delete == "delete":
                doomed.append((mount, ref))
        return doomed

    async def _drop(self, doomed: list[tuple[FileMount, FileRef]]) -> None:
        for mount, ref in doomed:  # only the version the item referred to
            with contextlib.suppress(NotFound, PreconditionFailed, ValidationError):
                await mount.files.delete(ref.key, if_match=ref.etag)

    async def delete(
        self, key: str, *, if_match: str | None = None, precondition: Any = None
    ) -> None:
        item = await self.inner.read(key)
        doomed = await self._before_delete(item) if item is not None else []
        await self.inner.delete(key, if_match=if_match, precondition=precondition)
        await self._drop(doomed)

    async def edit_batch(self, edits: Sequence[Edit], atomic: bool = True) -> list[EditResult[Any]]:
        doomed: dict[int, list[tuple[FileMount, FileRef]]] = {}
        deletes = [
            (i, e.key)
            for i, e in enumerate(edits)
            if e.kind.value == "delete" and e.key is not None
        ]
        current = await self.inner.read_batch([k for _, k in deletes]) if deletes else []
        for (i, _), item in zip(deletes, current, strict=True):
            if item is not None:
                doomed[i] = await self._before_delete(item)
        for e in edits:
            if e.item is not None:
                await self.check(e.item)
            if e.changes is not None:
                await self.check(e.changes)
        results = await self.inner.edit_batch(edits, atomic)
        for i, files in doomed.items():
            if results[i].ok:
                await self._drop(files)
        return results

    async def delete_all(self, filter: Any) -> int:
        if any(self.meta.attr(a).on_delete != "keep" for a in self.refs):
            raise ValidationError(
                f"{self.meta.name} has FileRef attributes with on_delete: "
                "delete its items one by one",
                field=None,
            )
        return await self.inner.delete_all(filter)


def file_ref_view(
    api: Any, refs: dict[str, FileMount]
) -> Callable[[AsyncStore[Any], Request], AsyncStore[Any]]:
    """The ``Served.wrap`` of a store with ``FileRef`` attributes."""

    def wrap(store: AsyncStore[Any], request: Request) -> AsyncStore[Any]:
        return FileRefStore(store, refs, api, request)

    return wrap


async def render_refs(
    api: Any, request: Request | None, store: Any, items: Sequence[Any]
) -> list[Any]:
    """``items`` (as served) with each file reference shown with the file's size, type and
    a signed URL: one ``info_batch`` per file store for the whole page. A reference the
    caller may not read, or to a file that has changed or gone, has no URL."""
    if not isinstance(store, FileRefStore) or not items:
        return list(items)
    rows = [msgspec.to_builtins(i) if i is not None else None for i in items]
    for attr, mount in store.refs.items():
        keys = sorted(
            {r[attr]["key"] for r in rows if r is not None and isinstance(r.get(attr), dict)}
        )
        if not keys:
            continue
        infos: dict[str, FileInfo | None] = dict(
            zip(keys, await mount.files.info_batch(keys), strict=True)
        )
        acc = store.access(mount)
        for r in rows:
            if r is None or not isinstance(r.get(attr), dict):
                continue
            ref = r[attr]
            info = infos.get(ref["key"])
            shown: dict[str, Any] = {
                "key": ref["key"],
                "etag": ref["etag"],
                "size": None,
                "content_type": None,
                "url": None,
                "url_expires_at": None,
            }
            if (
                info is not None
                and info.etag == ref["etag"]
                and acc is not None
                and (acc.can("read", info))
            ):
                url, expires = await signed_url(api, request, mount, info)
                shown.update(
                    size=info.size, content_type=info.content_type, url=url, url_expires_at=expires
                )
            r[attr] = shown
    return rows

"""The Python protocols of a stash (``[]``, ``in``, ``len``, iteration), which differ between
the sync and the async stash and so cannot be generated from one source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from persisty.errors import PersistyError


class StashMethods:
    """``stash[key]``, ``stash[key] = v``, ``del stash[key]``, ``key in stash``,
    ``len(stash)`` and iteration over ``(key, value)`` pairs, as zensols stashes have."""

    def __getitem__(self, key: Any) -> Any:
        return self._getitem(key)  # type: ignore[attr-defined]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.dump(key, value)  # type: ignore[attr-defined]

    def __delitem__(self, key: Any) -> None:
        self.delete(key)  # type: ignore[attr-defined]

    def __contains__(self, key: Any) -> bool:
        return bool(self.exists(key))  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return int(self.count())  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.items())  # type: ignore[attr-defined]

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


class AsyncStashMethods:
    """The async stash's protocols: ``await stash[key]`` and ``async for key, value in
    stash``; the operators that cannot await (``in``, ``len``, assignment) point to the
    awaitable method instead of silently doing nothing."""

    def __getitem__(self, key: Any) -> Any:
        return self._getitem(key)  # type: ignore[attr-defined]

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("an async stash cannot be assigned to: await stash.dump(key, value)")

    def __delitem__(self, key: Any) -> None:
        raise TypeError("an async stash cannot del: await stash.delete(key)")

    def __contains__(self, key: Any) -> bool:
        raise TypeError("`in` cannot await: use await stash.exists(key)")

    def __len__(self) -> int:
        raise TypeError("len() cannot await: use await stash.count()")

    def __aiter__(self) -> AsyncIterator[tuple[Any, Any]]:
        return self.items().__aiter__()  # type: ignore[attr-defined, no-any-return]

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()  # type: ignore[attr-defined]


class HasData:
    """``has_data`` as a property on the sync preemptive stashes (zensols' spelling)."""

    @property
    def has_data(self) -> bool:
        """Whether the delegate holds any data (computed once, until ``invalidate()``)."""
        return bool(self._has_data())  # type: ignore[attr-defined]


class AsyncHasData:
    """``await stash.has_data()`` on the async preemptive stashes."""

    def has_data(self) -> Any:
        """Whether the delegate holds any data (awaitable)."""
        return self._has_data()  # type: ignore[attr-defined]


class StashedError(PersistyError):
    """What a ``ProtectiveStash`` returns for a key whose dump failed."""

    code = "stashed_error"

    def __init__(self, message: str = "", *, type_name: str = "Exception") -> None:
        super().__init__(message)
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"StashedError({self.type_name}: {self})"

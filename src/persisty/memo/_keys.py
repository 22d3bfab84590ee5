"""How ``@persisted`` turns a call's arguments into a cache key (plain code).

In process, the key is the tuple of the bound arguments in parameter order (defaults
applied), so ``f(1)`` and ``f(x=1)`` are one entry; ``typed`` adds the argument types.
Outside the process (files, stores), the key is a SHA-256 of the arguments' JSON.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from persisty.errors import ValidationError

_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class KeyMaker:
    """Builds the in-process key of a call (``key(args, kwargs)``) and its stable text for
    files and stores (``text(key)``)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        skip_first: bool,
        ignore: Iterable[Any] = (),
        typed: bool = False,
        key: Callable[..., Any] | None = None,
    ) -> None:
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        self.skip = 1 if skip_first else 0
        self.params = params[self.skip :]
        names = [p.name for p in self.params]
        ignored: set[int] = set()
        for i in ignore:
            if isinstance(i, int) and not isinstance(i, bool):
                if not 0 <= i < len(names):
                    raise ValidationError(f"ignore: no argument at position {i}", field="ignore")
                ignored.add(i)
            elif isinstance(i, str):
                if i not in names:
                    raise ValidationError(f"ignore: no argument named {i!r}", field="ignore")
                ignored.add(names.index(i))
            else:
                raise ValidationError("ignore holds argument names or positions", field="ignore")
        self.ignored = frozenset(ignored)
        self.typed = typed
        self.custom = key
        self.has_args = bool(self.params)
        simple = all(p.kind in _KINDS for p in self.params)
        # a call with every argument given by position needs no binding (the hot path)
        self.positional = (
            len(params) if simple and not ignored and not typed and key is None else -1
        )

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The in-process key of the call ``fn(*args, **kwargs)`` (``args`` with the owner)."""
        if self.custom is not None:
            return self.custom(*args[self.skip :], **kwargs)
        if not kwargs and len(args) == self.positional:
            return args[self.skip :]
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = []
        for i, p in enumerate(self.params):
            if i in self.ignored:
                continue
            v = bound.arguments[p.name]
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                v = tuple(sorted(v.items()))
            values.append(v)
        if self.typed:
            values.extend(type(v) for v in list(values))
        return tuple(values)

    def text(self, key: Any) -> str:
        """The stable text of ``key`` for file names and store keys (a SHA-256, hex)."""
        data = msgspec.json.encode(key, enc_hook=_fallback, order="deterministic")
        return hashlib.sha256(data).hexdigest()


def _fallback(value: Any) -> Any:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def stash_name(fn: Callable[..., Any]) -> str:
    """A store-safe stash name for ``fn`` (at most 40 characters): the start of its
    qualified name and a hash of its module and qualified name."""
    qual = f"{fn.__module__}.{fn.__qualname__}"
    readable = _UNSAFE.sub("_", fn.__qualname__).strip("_")[:22]
    return f"m_{readable}_{hashlib.sha256(qual.encode()).hexdigest()[:12]}"

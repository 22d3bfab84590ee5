"""Ordered multi-attribute indexes for the in-process table.

An :class:`OrderedIndex` keeps one entry per item, sorted by the index's attributes and then
the key attributes (the tie-break of every persisty sort), so that equality on a prefix of
the attributes plus a range on, or an order by, the next one is a slice of the entries:
found in O(log n) and read in O(k). Each entry flattens its values to ``(flag, value)``
pairs, ``(0, None)`` for None and ``(1, value)`` otherwise, so None sorts first ascending
(and, walking backwards, last descending) as the one semantics says, and values of one
attribute are only ever compared with each other.

The entries live in a :class:`SortedEntries`: a list of sorted blocks of at most
``2 * LOAD`` entries with each block's last entry in a list of maxima, so an insert or a
delete moves at most one block's pointers instead of the whole table's.
"""

from __future__ import annotations

import bisect
import enum
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Entry = tuple[Any, ...]
Position = tuple[int, int]
"""(block, offset) of an entry in a :class:`SortedEntries`."""

NONE_PAIR = (0, None)


def pair(v: Any) -> tuple[int, Any]:
    """The ``(flag, value)`` form of one value in an entry."""
    if v is None:
        return NONE_PAIR
    return (1, v.value if isinstance(v, enum.Enum) else v)


class SortedEntries:
    """A sorted collection of tuples with O(log n + LOAD) inserts and deletes and positional
    slices (a minimal sorted container: blocks of sorted lists and their maxima)."""

    LOAD = 256

    __slots__ = ("_blocks", "_maxes", "width")

    def __init__(self, width: int) -> None:
        self._blocks: list[list[Entry]] = []
        self._maxes: list[Entry] = []
        self.width = width
        """Elements of an entry before its key (two per column)."""

    def __len__(self) -> int:
        return sum(map(len, self._blocks))

    def add(self, e: Entry) -> None:
        blocks, maxes = self._blocks, self._maxes
        if not blocks:
            blocks.append([e])
            maxes.append(e)
            return
        i = bisect.bisect_left(maxes, e)
        if i == len(maxes):
            i -= 1
            block = blocks[i]
            block.append(e)
            maxes[i] = e
        else:
            block = blocks[i]
            bisect.insort(block, e)
        if len(block) > 2 * self.LOAD:
            half = block[self.LOAD :]
            del block[self.LOAD :]
            blocks.insert(i + 1, half)
            maxes[i] = block[-1]
            maxes.insert(i + 1, half[-1])

    def remove(self, e: Entry) -> None:
        blocks, maxes = self._blocks, self._maxes
        i = bisect.bisect_left(maxes, e)
        if i == len(maxes):
            return
        block = blocks[i]
        j = bisect.bisect_left(block, e)
        if j == len(block) or block[j] != e:
            return
        del block[j]
        if not block:
            del blocks[i]
            del maxes[i]
        elif j == len(block):
            maxes[i] = block[-1]

    def position(self, bound: Entry, right: bool = False) -> Position:
        """Where the first entry whose first ``len(bound)`` elements are ``>= bound``
        (``> bound`` when ``right``) is; the end when there is none. ``bound`` is made of
        whole ``(flag, value)`` pairs."""
        if right:
            if len(bound) >= self.width:
                return self._position_by_head(bound)
            # the element after a pair is the next flag (0 or 1): 2 is past every one of them
            bound = (*bound, 2)
        # an entry is longer than ``bound``: it is >= bound exactly when its head is
        i = bisect.bisect_left(self._maxes, bound)
        if i == len(self._blocks):
            return (i, 0)
        return (i, bisect.bisect_left(self._blocks[i], bound))

    def _position_by_head(self, bound: Entry) -> Position:
        depth = len(bound)

        def head(e: Entry) -> Entry:
            return e[:depth]

        i = bisect.bisect_right(self._maxes, bound, key=head)
        if i == len(self._blocks):
            return (i, 0)
        return (i, bisect.bisect_right(self._blocks[i], bound, key=head))

    def end(self) -> Position:
        return (len(self._blocks), 0)

    def between(self, lo: Position, hi: Position) -> int:
        """How many entries lie from ``lo`` (inclusive) to ``hi`` (exclusive)."""
        (i, j), (k, m) = lo, hi
        if (i, j) >= (k, m):
            return 0
        if i == k:
            return m - j
        blocks = self._blocks
        return len(blocks[i]) - j + sum(map(len, blocks[i + 1 : k])) + m

    def take(self, lo: Position, hi: Position, reverse: bool, n: int) -> list[Entry]:
        """At most ``n`` entries of :meth:`walk`, gathered by list slices."""
        (i, j), (k, m) = lo, hi
        out: list[Entry] = []
        if (i, j) >= (k, m) or n <= 0:
            return out
        blocks = self._blocks
        if not reverse:
            b, start = i, j
            while b <= k and len(out) < n:
                stop = m if b == k else len(blocks[b])
                out += blocks[b][start : min(stop, start + n - len(out))]
                b, start = b + 1, 0
                if b == k and m == 0:
                    break
            return out
        b, stop = (k, m) if m else (k - 1, len(blocks[k - 1]))
        while b >= i and len(out) < n:
            start = j if b == i else 0
            part = blocks[b][max(start, stop - (n - len(out))) : stop]
            part.reverse()
            out += part
            b -= 1
            if b >= 0:
                stop = len(blocks[b])
        return out

    def walk(self, lo: Position, hi: Position, reverse: bool = False) -> Iterator[Entry]:
        """The entries from ``lo`` to ``hi`` in order (or in reverse order)."""
        (i, j), (k, m) = lo, hi
        if (i, j) >= (k, m):
            return
        blocks = self._blocks
        if not reverse:
            if i == k:
                yield from blocks[i][j:m]
                return
            yield from blocks[i][j:]
            for b in range(i + 1, k):
                yield from blocks[b]
            if m:
                yield from blocks[k][:m]
            return
        if i == k:
            yield from reversed(blocks[i][j:m])
            return
        if m:
            yield from reversed(blocks[k][:m])
        for b in range(k - 1, i, -1):
            yield from reversed(blocks[b])
        yield from reversed(blocks[i][j:])


class OrderedIndex:
    """The entries of one ordered index over ``columns`` (the index's attributes followed by
    the key attributes it does not already name); each entry ends with the item's key and
    the item itself (reading a slice then touches nothing but the slice; entries never
    compare as far as the key, since the columns include the key attributes)."""

    __slots__ = ("_values", "by_key", "columns", "entries")

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.entries = SortedEntries(2 * len(self.columns))
        self.by_key: dict[Any, Entry] = {}
        get = operator.attrgetter(*self.columns)
        self._values: Callable[[Any], tuple[Any, ...]] = (
            get if len(self.columns) > 1 else (lambda item: (get(item),))
        )

    def entry(self, key: Any, item: Any) -> Entry:
        flat: list[Any] = []
        for v in self._values(item):
            flat += pair(v)
        flat.append(key)
        flat.append(item)
        return tuple(flat)

    def add(self, key: Any, item: Any) -> None:
        e = self.entry(key, item)
        self.entries.add(e)
        self.by_key[key] = e

    def discard(self, key: Any) -> None:
        # the entry as it was indexed: the item may have been changed in place since
        e = self.by_key.pop(key, None)
        if e is not None:
            self.entries.remove(e)

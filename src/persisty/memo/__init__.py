"""Method-result caching with the names of zensols.persist: ``@persisted``,
``PersistedWork`` and ``PersistableContainer``, in memory, in files or in any persisty store.

Example::

    from persisty.memo import persisted

    class Report:
        @persisted("_total", path=Path("total.json"))
        def total(self, year: int) -> int:
            return expensive(year)          # once per year, then from the file

    @persisted(store="sqlite:///memo.db")   # one computation per key across processes
    def embed(text: str) -> list[float]: ...
"""

from persisty.memo._persisted import CacheInfo, PersistableContainer, PersistedWork, persisted

__all__ = ["CacheInfo", "PersistableContainer", "PersistedWork", "persisted"]

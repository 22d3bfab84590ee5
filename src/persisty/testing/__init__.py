"""The conformance suite every backend and layer passes; ship it to test your own backend.

Example::

    from persisty.testing import StoreConformance

    class TestMine(StoreConformance):
        def open_database(self, namespace):
            return persisty.connect("mine://…", namespace=namespace)
"""

from persisty.testing._async import AsyncStoreConformance
from persisty.testing._commit_async import AsyncCommitConformance
from persisty.testing._commit_sync import CommitConformance
from persisty.testing._contract_async import AsyncPutExpiryIncrementConformance
from persisty.testing._contract_sync import PutExpiryIncrementConformance
from persisty.testing._files_async import AsyncFileStoreConformance
from persisty.testing._files_sync import FileStoreConformance
from persisty.testing._kv_async import AsyncKVConformance
from persisty.testing._kv_sync import KVConformance
from persisty.testing._lifecycle_async import AsyncDatabaseLifecycleConformance
from persisty.testing._lifecycle_sync import DatabaseLifecycleConformance
from persisty.testing._nested_async import AsyncNestedFilterConformance
from persisty.testing._nested_sync import NestedFilterConformance
from persisty.testing._paths_async import AsyncPathConformance
from persisty.testing._paths_sync import PathConformance
from persisty.testing._robust_async import AsyncRobustnessConformance
from persisty.testing._robust_sync import RobustnessConformance
from persisty.testing._secrecy._async import AsyncPageKeySecrecyConformance
from persisty.testing._secrecy._sync import PageKeySecrecyConformance
from persisty.testing._stash_async import AsyncStashConformance
from persisty.testing._stash_sync import StashConformance
from persisty.testing._sync import StoreConformance

__all__ = [
    "AsyncCommitConformance",
    "AsyncDatabaseLifecycleConformance",
    "AsyncFileStoreConformance",
    "AsyncKVConformance",
    "AsyncNestedFilterConformance",
    "AsyncPageKeySecrecyConformance",
    "AsyncPathConformance",
    "AsyncPutExpiryIncrementConformance",
    "AsyncRobustnessConformance",
    "AsyncStashConformance",
    "AsyncStoreConformance",
    "CommitConformance",
    "DatabaseLifecycleConformance",
    "FileStoreConformance",
    "KVConformance",
    "NestedFilterConformance",
    "PageKeySecrecyConformance",
    "PathConformance",
    "PutExpiryIncrementConformance",
    "RobustnessConformance",
    "StashConformance",
    "StoreConformance",
]

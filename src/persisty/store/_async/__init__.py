"""The Store contract, its base classes and the Database (async); the sync twins in
``persisty.store._sync`` are generated. ``persisty.store`` is the public surface."""

from persisty.store._async.base import AsyncStoreBase as AsyncStoreBase
from persisty.store._async.composed import MAX_RETRIES as MAX_RETRIES
from persisty.store._async.composed import delete_keys as delete_keys
from persisty.store._async.composed import patch_keys as patch_keys
from persisty.store._async.composed import put_through as put_through
from persisty.store._async.composed import resolve_puts as resolve_puts
from persisty.store._async.contract import AsyncStore as AsyncStore
from persisty.store._async.contract import OrderArg as OrderArg
from persisty.store._async.core import AsyncStoreCore as AsyncStoreCore
from persisty.store._async.database import AsyncDatabase as AsyncDatabase
from persisty.store._async.outbox import AsyncOutbox as AsyncOutbox
from persisty.store._async.outbox import AsyncOutboxSource as AsyncOutboxSource
from persisty.store._async.sql_access import AsyncSqlAccess as AsyncSqlAccess
from persisty.store._async.wrapped import AsyncWrappedStore as AsyncWrappedStore

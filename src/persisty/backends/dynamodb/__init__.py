"""The DynamoDB backend: ``dynamodb://?region=…&endpoint_url=…`` (aiobotocore / botocore).

Example::

    import persisty
    db = persisty.connect("dynamodb://?region=us-east-1", namespace="app")
    notes = db.store(Note)
"""

from persisty.backends.dynamodb._async.database import AsyncDynamoDatabase
from persisty.backends.dynamodb._async.store import AsyncDynamoStore
from persisty.backends.dynamodb._sync.database import DynamoDatabase
from persisty.backends.dynamodb._sync.store import DynamoStore

__all__ = ["AsyncDynamoDatabase", "AsyncDynamoStore", "DynamoDatabase", "DynamoStore"]

"""The DynamoDB backend: ``dynamodb://?region=…&endpoint_url=…`` (aiobotocore / botocore).

Example::

    import persisty
    db = persisty.connect("dynamodb://?region=us-east-1", namespace="app")
    notes = db.store(Note)
"""

from persisty.backends.dynamodb._async import AsyncDynamoDatabase, AsyncDynamoStore
from persisty.backends.dynamodb._sync import DynamoDatabase, DynamoStore

__all__ = ["AsyncDynamoDatabase", "AsyncDynamoStore", "DynamoDatabase", "DynamoStore"]

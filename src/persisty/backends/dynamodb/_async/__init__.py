"""The DynamoDB backend, async (the source of the generated ``_sync`` package)."""

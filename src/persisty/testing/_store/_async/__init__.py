"""The Store conformance suite's parts (async sources; ``_sync`` is generated)."""

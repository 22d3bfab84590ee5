"""The Store conformance suite split by concern (async sources and their generated sync
twins); :class:`persisty.testing.AsyncStoreConformance` composes them."""

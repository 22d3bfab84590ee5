"""The async layers; their sync twins in ``persisty.layers._sync`` are generated."""

"""The async file store; ``_sync/`` is generated from this folder."""

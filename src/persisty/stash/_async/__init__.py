"""The async stashes; the sync twin ``persisty/stash/_sync`` is generated from this folder by
``scripts/generate_sync.py`` (edit these files, never the twin)."""

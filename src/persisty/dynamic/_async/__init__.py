"""The async catalog (the source of the generated sync twin in ``_sync``)."""

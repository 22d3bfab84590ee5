"""Pinning writes to the etags a layer checked: shared by the encrypted, observed and related
layers (async source and its generated sync twin)."""

"""Conformance of page-key secrecy (async source and its generated sync twin)."""

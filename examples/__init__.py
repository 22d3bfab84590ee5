"""Runnable examples; each has a test."""

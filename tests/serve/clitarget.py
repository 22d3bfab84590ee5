"""What the CLI tests point the ``persisty`` command at."""

from serve_models import Note, Page  # noqa: F401

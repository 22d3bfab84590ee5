"""What the CLI tests point the ``persisty`` command at."""

from tests.serve.serve_models import Note, Page  # noqa: F401

"""An app for ``persisty serve`` in the CLI test; the URL comes from ``--url``."""

from tests.serve.serve_models import Note

import persisty.aio
from persisty.serve import app

asgi = app(persisty.aio.connect(), [Note])

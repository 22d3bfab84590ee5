"""The app the GraphQL timing tests serve from a process of its own (so the test's clients
share neither its interpreter lock nor its garbage collector): SQLite at
``$PERSISTY_GQL_TIMING_DB``, 20 authors and 1,000 posts seeded at startup."""

import asyncio
import os
import time
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse
from tests.serve.serve_models import Author, Post

import persisty.aio
from persisty.serve import Link, app
from persisty.store import Edit

db = persisty.aio.connect(
    f"sqlite:///{os.environ['PERSISTY_GQL_TIMING_DB']}", namespace="t" + uuid.uuid4().hex[:8]
)


async def seed() -> None:
    await db.store(Author).edit_batch(
        [Edit.create(Author(id=f"a{i}", name=f"n{i}")) for i in range(20)]
    )
    await db.store(Post).edit_batch(
        [
            Edit.create(Post(id=uuid.uuid4(), author_id=f"a{i % 20}", text=f"post {i}", stars=i))
            for i in range(1000)
        ]
    )


# the longest the event loop was busy between two turns of a heartbeat, in CPU time of the
# loop's thread: what a request arriving meanwhile waits for, whatever else the machine runs
# (a process that is not scheduled uses no CPU time); read and reset by GET /_probe/loop
_busiest = [0.0]


async def _heartbeat() -> None:
    last = time.thread_time()
    while True:
        await asyncio.sleep(0.002)
        now = time.thread_time()
        _busiest[0] = max(_busiest[0], now - last)
        last = now


async def _start_heartbeat() -> None:
    _tasks.append(asyncio.get_running_loop().create_task(_heartbeat()))


async def _busiest_turn(request: Request) -> JSONResponse:
    value, _busiest[0] = _busiest[0], 0.0
    return JSONResponse({"cpu_seconds": value})


_tasks: list[asyncio.Task[None]] = []
asgi = app(
    db,
    [Author, Post],
    links=[Link(Post, "author_id", Author, back="posts")],
    on_startup=[seed, _start_heartbeat],
)
asgi.add_route("/_probe/loop", _busiest_turn)

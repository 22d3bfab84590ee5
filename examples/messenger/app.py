"""A small messenger on persisty: users, channels and messages, served over REST + GraphQL
with JWT auth, and the admin UI at ``/admin``. Anyone may read users and channels; signed-in
users read messages and write their own (the owner of a message is always the signed-in
user, and only they may change or delete it); admins manage users and channels. Relations
(a message belongs to a channel and an author; deleting a channel deletes its messages) come
from the class declarations: GraphQL nests them, loading each level in one batched read.

Run it with ``scripts/run-example`` (embedded SQLite ``persisty.db`` by default, or
``PERSISTY_URL``), which starts it in demo mode: demo accounts ann/ann, bob/bob (users),
root/root (admin), signed with a random secret for this run. Outside demo mode it needs
``MESSENGER_SECRET`` (the JWT signing secret, at least 32 characters) and refuses to start
without it.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from uuid import UUID, uuid4

from starlette.applications import Starlette

import persisty.aio
from persisty import Attr, Index, stored
from persisty.layers import BelongsTo, HasMany, Policy
from persisty.query import F
from persisty.serve import DemoAuthenticator, JWTAuth
from persisty.serve import app as make_app


@stored
class User:
    """Someone who can sign in and post."""

    id: str = Attr(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")
    name: str = Attr(max_length=100)
    created_at: datetime = Attr(generated="created", default=None)
    messages = HasMany("Message", "owner", on_delete="cascade")


@stored(indexes=[Index("title", unique=True)])
class Channel:
    """A place where messages are posted."""

    id: str = Attr(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$")
    title: str = Attr(max_length=100)
    topic: str = Attr(default="", max_length=500)
    created_at: datetime = Attr(generated="created", default=None)
    messages = HasMany("Message", "channel_id", on_delete="cascade")


@stored(indexes=[Index("channel_id", "sent_at"), Index("owner")])
class Message:
    """A message in a channel; its owner is the user who posted it."""

    id: UUID = Attr(default_factory=uuid4)
    channel_id: str = Attr(min_length=1, max_length=40)
    owner: str = Attr(default="", max_length=40)
    text: str = Attr(min_length=1, max_length=2000)
    sent_at: datetime = Attr(generated="created", default=None)
    edited_at: datetime = Attr(generated="updated", default=None)
    channel = BelongsTo(Channel, "channel_id")
    author = BelongsTo(User, "owner")


def own(principal: persisty.layers.Principal) -> persisty.Filter:
    return F.owner == principal.subject


READ_ONLY_OR_ADMIN = Policy.scoped(
    {"anonymous": Policy.read_only(), "user": Policy.read_only(), "admin": Policy.allow_all()}
)

POLICIES = {
    User: READ_ONLY_OR_ADMIN,
    Channel: READ_ONLY_OR_ADMIN,
    Message: Policy.scoped(
        {
            "user": Policy(
                read=None, create=own, update=own, delete=own, force=lambda p: {"owner": p.subject}
            ),
            "admin": Policy.allow_all(),
        }
    ),
}

USERS = {"ann": ("ann", ["user"]), "bob": ("bob", ["user"]), "root": ("root", ["admin"])}


async def seed(db: persisty.aio.AsyncDatabase) -> None:
    """Sample data, written once into an empty database."""
    channels = db.store(Channel)
    if await channels.count() > 0:
        return
    users = db.store(User)
    for uid, name in (("ann", "Ann Smith"), ("bob", "Bob Jones"), ("root", "Admin")):
        if await users.read(uid) is None:
            await users.create(User(id=uid, name=name))
    await channels.create(Channel(id="general", title="General", topic="Anything goes"))
    await channels.create(Channel(id="random", title="Random", topic="Off topic"))
    messages = db.store(Message)
    for owner, channel, text in (
        ("ann", "general", "Hello everyone!"),
        ("bob", "general", "Hi Ann, welcome."),
        ("ann", "random", "Has anyone tried persisty on DynamoDB?"),
        ("bob", "random", "Yes: same code, different URL."),
    ):
        await messages.create(Message(channel_id=channel, owner=owner, text=text))


def create_app(url: str | None = None, *, demo: bool = False) -> Starlette:
    """The messenger ASGI app on ``url`` (else ``PERSISTY_URL``, else sqlite:///persisty.db).

    The JWT secret comes from ``MESSENGER_SECRET``; without it the app refuses to start,
    unless ``demo`` (then a random secret for this process, and the demo logins)."""
    secret = os.environ.get("MESSENGER_SECRET")
    if secret is not None and len(secret) < 32:
        raise SystemExit("MESSENGER_SECRET must be at least 32 characters")
    if secret is None:
        if not demo:
            raise SystemExit(
                "set MESSENGER_SECRET (the JWT signing secret, 32+ characters), "
                "or start the demo: scripts/run-example (--demo)"
            )
        secret = secrets.token_urlsafe(32)
    db = persisty.aio.connect(url)
    return make_app(
        db,
        [User, Channel, Message],
        auth=JWTAuth(secret=secret),
        login=DemoAuthenticator(USERS) if demo else None,
        policies=POLICIES,
        anonymous=[User, Channel],
        cache_control={
            User: "public, max-age=60",
            Channel: "public, max-age=60",
            Message: "private, no-cache",
        },
        cors=True,
        title="persisty messenger",
        admin=True,
        on_startup=[lambda: seed(db)],
    )


_app: Starlette | None = None


def __getattr__(name: str) -> Starlette:
    """``app`` is made on first use, so importing this module opens no database."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app(demo=os.environ.get("MESSENGER_DEMO") == "1")
        return _app
    raise AttributeError(name)

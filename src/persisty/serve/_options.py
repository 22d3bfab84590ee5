"""What :func:`persisty.serve.app` is told (:class:`ServeOptions`, one typed object behind its
keyword arguments) and the :class:`Api` built from it: the served stores, checked."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypedDict

from persisty.errors import ValidationError
from persisty.layers import relations_of
from persisty.model import meta_of
from persisty.serve._api import DEFAULT_LIMITS, Api, Link, Served
from persisty.serve._auth import DemoAuthenticator, JWTAuth
from persisty.serve._files_access import file_mounts
from persisty.serve._files_refs import file_ref_view, ref_attrs
from persisty.serve._graphql_relations import relation_graph
from persisty.serve._limits import Limits
from persisty.store import AsyncDatabase

Cors = bool | Sequence[str] | Mapping[str, Any] | None


@dataclass(frozen=True)
class ServeOptions:
    """How :func:`app` and :func:`router` serve the stores (their keyword arguments; see
    :func:`app` for what each means)."""

    auth: JWTAuth | None = None
    policies: Mapping[Any, Any] | None = None
    anonymous: Iterable[Any] | bool = ()
    login: DemoAuthenticator | None = None
    cache_control: Any = None
    prefix: str = "/api"
    max_limit: int = 1000
    title: str = "persisty"
    graphql: bool = True
    docs: bool = True
    links: Iterable[Link] = ()
    limits: Limits | None = None
    files: Mapping[str, Any] | None = None
    file_policies: Mapping[str, Any] | None = None
    file_anonymous: Iterable[str] | bool = ()
    file_redirect: Iterable[str] | bool = False
    dynamic: Any = None
    # the application's own (router ignores them)
    cors: Cors = None
    on_startup: Sequence[Callable[[], Any]] = ()
    close_database: bool = True
    debug: bool = False
    admin: bool = False


class RouterKeywords(TypedDict, total=False):
    """The keyword arguments of :func:`router`."""

    auth: JWTAuth | None
    policies: Mapping[Any, Any] | None
    anonymous: Iterable[Any] | bool
    login: DemoAuthenticator | None
    cache_control: Any
    prefix: str
    max_limit: int
    title: str
    graphql: bool
    docs: bool
    links: Iterable[Link]
    limits: Limits | None
    files: Mapping[str, Any] | None
    file_policies: Mapping[str, Any] | None
    file_anonymous: Iterable[str] | bool
    file_redirect: Iterable[str] | bool
    dynamic: Any


class ServeKeywords(RouterKeywords, total=False):
    """The keyword arguments of :func:`app`: the fields of :class:`ServeOptions` (a test
    keeps the two the same)."""

    cors: Cors
    on_startup: Sequence[Callable[[], Any]]
    close_database: bool
    debug: bool
    admin: bool


APP_ONLY = frozenset(f.name for f in fields(ServeOptions)) - RouterKeywords.__optional_keys__


def _served(cls: Any, policies: Mapping[Any, Any], anonymous: Any, cache_control: Any) -> Served:
    meta = meta_of(cls)
    policy = policies.get(cls, policies.get(meta.name))
    anon = (
        anonymous if isinstance(anonymous, bool) else (cls in anonymous or meta.name in anonymous)
    )
    if isinstance(cache_control, Mapping):
        cc = cache_control.get(cls, cache_control.get(meta.name))
    else:
        cc = cache_control
    hidden = frozenset(a.name for a in meta.attrs if not a.readable)
    return Served(
        cls=cls,
        meta=meta,
        policy=policy,
        anonymous=anon,
        cache_control=cc,
        hidden=hidden,
        create_attrs=frozenset(meta.json_schema("create")["properties"]),
        update_attrs=frozenset(meta.json_schema("update")["properties"]),
        patch_attrs=frozenset(meta.json_schema("patch")["properties"]),
        related=bool(relations_of(cls)),
    )


def serve_api(db: AsyncDatabase, stores: Iterable[type[Any]], options: ServeOptions) -> Api:
    """The :class:`Api` ``options`` describe, checked (see :func:`app`)."""
    if not isinstance(db, AsyncDatabase):
        raise TypeError(
            f"the API serves an async database, not {type(db).__name__}: open it with "
            "persisty.aio.connect(url) (persisty.connect gives a sync one)"
        )
    if options.limits is not None and not isinstance(options.limits, Limits):
        raise TypeError("limits must be a persisty.serve.Limits")
    if options.login is not None and (options.auth is None or options.auth.secret is None):
        raise ValidationError("login needs auth=JWTAuth(secret=...) to issue tokens", field="login")
    prefix = "/" + options.prefix.strip("/") if options.prefix.strip("/") else ""
    policies = dict(options.policies or {})
    anonymous = options.anonymous
    anon = anonymous if isinstance(anonymous, bool) else list(anonymous)
    if options.auth is None and anonymous == ():
        anon = True
    served: dict[str, Served] = {}
    for cls in stores:
        s = _served(cls, policies, anon, options.cache_control)
        if s.name in served:
            raise ValidationError(f"two stores are named {s.name!r}", field="stores")
        served[s.name] = s
    links = tuple(options.links)
    relation_graph(served, links)  # a bad link fails here, GraphQL or not
    anon_files, redirect = options.file_anonymous, options.file_redirect
    mounts = file_mounts(
        dict(options.files) if options.files is not None else None,
        options.file_policies,
        anon_files if isinstance(anon_files, bool) else list(anon_files),
        redirect=redirect if isinstance(redirect, bool) else list(redirect),
    )
    api = Api(
        db,
        served,
        auth=options.auth,
        login=options.login,
        prefix=prefix,
        max_limit=options.max_limit,
        title=options.title,
        links=links,
        limits=options.limits or DEFAULT_LIMITS,
        files=mounts,
    )
    for s in served.values():
        refs = ref_attrs(s.meta, mounts)
        if refs:
            s.wrap = file_ref_view(api, refs)
    return api

"""``python -m examples.messenger [--demo] [--host H] [--port P] [--url URL] [--check]``.

``--demo`` starts it with demo logins and a random JWT secret (else ``MESSENGER_SECRET`` is
required). Starts the messenger and prints the URLs of the admin UI, the API, /docs and
/graphql. ``--check`` starts it on a free port, exercises it over HTTP (docs, the admin's
sign-in page, GraphQL, login, posting) and exits 0 when everything answered as it should.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _urls(base: str) -> str:
    return (
        f"Admin:   {base}/admin/\nAPI:     {base}/api\nDocs:    {base}/docs\n"
        f"GraphQL: {base}/graphql"
    )


def check(server: object, base: str) -> int:
    import httpx

    with httpx.Client(base_url=base, timeout=10) as c:
        steps = []
        r = c.get("/api")
        steps.append(("GET /api", r.status_code == 200 and "message" in r.json()["stores"]))
        r = c.get("/api/channel")
        steps.append(("GET /api/channel", r.status_code == 200 and len(r.json()["items"]) >= 2))
        steps.append(("GET /docs", c.get("/docs").status_code == 200))
        admin = c.get("/admin/", follow_redirects=True)
        steps.append(
            ("GET /admin/ -> sign-in page", admin.status_code == 200 and "Sign in" in admin.text)
        )
        spec = c.get("/api/openapi.json")
        steps.append(
            (
                "GET /api/openapi.json",
                spec.status_code == 200 and "/api/message" in spec.json()["paths"],
            )
        )
        steps.append(
            ("GET /api/message without a token -> 401", c.get("/api/message").status_code == 401)
        )
        token = c.post("/api/_login", json={"username": "ann", "password": "ann"})
        steps.append(("POST /api/_login", token.status_code == 200))
        auth = {"Authorization": "Bearer " + token.json().get("access_token", "")}
        posted = c.post(
            "/api/message", json={"channel_id": "general", "text": "check"}, headers=auth
        )
        steps.append(
            ("POST /api/message", posted.status_code == 201 and posted.json()["owner"] == "ann")
        )
        q = '{ channel(key: "general") { title messages { text author { name } } } }'
        g = c.post("/graphql", json={"query": q}, headers=auth)
        steps.append(
            (
                "POST /graphql",
                g.status_code == 200
                and "errors" not in g.json()
                and g.json()["data"]["channel"]["messages"],
            )
        )
        if posted.status_code == 201:
            c.delete(posted.headers["location"], headers=auth)
    for name, ok in steps:
        print(("ok   " if ok else "FAIL ") + name)
    return 0 if all(ok for _, ok in steps) else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/run-example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--url", help="database URL (default: sqlite:///persisty.db)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="demo logins (ann/ann, bob/bob, root/root), a random JWT secret",
    )
    parser.add_argument(
        "--check", action="store_true", help="start on a free port, exercise the API, stop"
    )
    args = parser.parse_args()
    if args.url:
        os.environ["PERSISTY_URL"] = args.url
    import uvicorn

    from examples.messenger.app import create_app

    app = create_app(demo=args.demo)

    url = os.environ.get("PERSISTY_URL", "sqlite:///persisty.db")
    if not args.check:
        print(
            f"persisty messenger on {url}\n"
            + _urls(f"http://{args.host}:{args.port}")
            + (
                "\nDemo logins (admin and API): ann/ann, bob/bob (users), root/root (admin)"
                if args.demo
                else ""
            )
            + '\nAPI sign-in: POST /api/_login {"username": "ann", "password": "ann"}',
            flush=True,
        )
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    port = _free_port(args.host)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            print("FAIL the server did not start")
            return 1
        time.sleep(0.05)
    base = f"http://{args.host}:{port}"
    print(f"persisty messenger on {url}\n" + _urls(base), flush=True)
    try:
        return check(server, base)
    finally:
        server.should_exit = True
        thread.join(10)


if __name__ == "__main__":
    sys.exit(main())

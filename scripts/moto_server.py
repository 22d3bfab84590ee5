"""moto_server with one request at a time: moto's threaded server checks and applies a
DynamoDB ConditionExpression without a lock, so concurrent conditional writes can both
succeed (a lost update that real DynamoDB never allows). Serving requests one by one makes
moto as atomic as DynamoDB. Usage: ``python scripts/moto_server.py -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import argparse
import socket

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler  # type: ignore[attr-defined]
from werkzeug.serving import run_simple


class Handler(MotoRequestHandler):  # type: ignore[misc]
    """moto's handler with TCP_NODELAY: without it every response waits ~40 ms for the
    client's delayed ACK (headers and body go out as two small writes)."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main() -> None:
    """Serve moto on host:port, one request at a time."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, request_handler=Handler)


if __name__ == "__main__":
    main()

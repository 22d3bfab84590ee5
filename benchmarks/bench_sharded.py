"""A Person sharded four ways (birth_details, location, location.geolocation, locations[])
through persisty's ``sharded`` layer vs the same work in raw boto3, on moto_server; and the
sharded layer's times on SQLite.

The raw contender is what hand-written boto3 code does with the same five tables: one
TransactWriteItems of every row for a create, one BatchGetItem of every row (the parent's
list length known) for a read, a GetItem of the parent and one TransactWriteItems (the
location row and the parent's pointer, conditional on the parent's version) for a
``write_path``, one TransactWriteItems of every delete for a delete.

    source scripts/services    # starts moto_server, exports AWS_ENDPOINT_URL
    .venv/bin/python benchmarks/bench_sharded.py --n 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.layers.sharded_models import FOUR_WAYS, Person, person

import persisty
from persisty.layers import shard_model, sharded

ROWS = shard_model(Person, FOUR_WAYS)


class Requests:
    """Counts DynamoDB requests per phase through botocore's before-call event."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.count: Counter[str] = Counter()

    def __call__(self, **_: Any) -> None:
        self.count[self.phase] += 1


def _persisty(url: str, n: int, requests: Requests | None) -> dict[str, float]:
    db = persisty.connect(url, namespace="b" + uuid.uuid4().hex[:8])
    try:
        if requests is not None:
            db.client.raw().meta.events.register("before-call.dynamodb", requests)  # type: ignore[attr-defined]
        people = sharded(db.store(ROWS), FOUR_WAYS)
        people.create(person("warm"))
        people.delete("warm")
        times: dict[str, float] = {}
        keys = [f"p{i}" for i in range(n)]
        for phase, work in (
            ("create", lambda k: people.create(person(k))),
            ("read", lambda k: people.read(k)),
            ("write_path", lambda k: people.write_path(k, "location.city", "Tokyo")),
        ):
            if requests is not None:
                requests.phase = phase
            start = time.perf_counter()
            for k in keys:
                work(k)
            times[phase] = (time.perf_counter() - start) / n
        cold = sharded(db.store(ROWS), FOUR_WAYS)  # a new layer: no pointers seen yet
        if requests is not None:
            requests.phase = "read (cold)"
        start = time.perf_counter()
        for k in keys:
            cold.read(k)
        times["read (cold)"] = (time.perf_counter() - start) / n
        batch = [f"q{i}" for i in range(100)]
        if requests is not None:
            requests.phase = "setup"  # the 100 creates are not the phase before's
        for k in batch:
            people.create(person(k))
        if requests is not None:
            requests.phase = "read_batch(100)"
        start = time.perf_counter()
        got = people.read_batch(batch)
        times["read_batch(100)"] = time.perf_counter() - start
        assert all(g is not None for g in got)
        if requests is not None:
            requests.phase = "delete"
        start = time.perf_counter()
        for k in keys:
            people.delete(k)
        times["delete"] = (time.perf_counter() - start) / n
        cold = sharded(db.store(ROWS), FOUR_WAYS)
        if requests is not None:
            requests.phase = "delete (cold)"
        start = time.perf_counter()
        for k in batch[:n]:
            cold.delete(k)
        times["delete (cold)"] = (time.perf_counter() - start) / n
        return times
    finally:
        if requests is not None:
            requests.phase = "teardown"  # dropping the tables is no delete's
        db.drop()
        db.close()


def _raw(n: int, requests: Requests) -> dict[str, float]:
    c = boto3.client("dynamodb", region_name="us-east-1")
    c.meta.events.register("before-call.dynamodb", requests)
    prefix = "raw" + uuid.uuid4().hex[:8]
    names = {"parent": f"{prefix}.person", **{p: f"{prefix}.{t}" for p, t in FOUR_WAYS.items()}}
    for path, name in names.items():
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
        if path.endswith("[]"):
            keys.append({"AttributeName": "i", "KeyType": "RANGE"})
            attrs.append({"AttributeName": "i", "AttributeType": "N"})
        c.create_table(
            TableName=name,
            KeySchema=keys,
            AttributeDefinitions=attrs,
            BillingMode="PAY_PER_REQUEST",
        )

    def rows(k: str, city: str = "Osaka") -> list[dict[str, Any]]:
        return [
            {
                "Put": {
                    "TableName": names["parent"],
                    "Item": {
                        "pk": {"S": k},
                        "name": {"S": "Ann"},
                        "v": {"N": "1"},
                        "friends": {"L": [{"S": "bo"}, {"S": "cy"}]},
                        "n": {"N": "2"},
                    },
                }
            },
            {
                "Put": {
                    "TableName": names["birth_details"],
                    "Item": {
                        "pk": {"S": k},
                        "hospital": {"S": "St Luke"},
                        "dob": {"S": "1990-01-02"},
                    },
                }
            },
            {
                "Put": {
                    "TableName": names["location"],
                    "Item": {"pk": {"S": k}, "city": {"S": city}, "country": {"S": "JP"}},
                }
            },
            {
                "Put": {
                    "TableName": names["location.geolocation"],
                    "Item": {
                        "pk": {"S": k},
                        "longitude": {"N": "135.5"},
                        "latitude": {"N": "34.7"},
                    },
                }
            },
            {
                "Put": {
                    "TableName": names["locations[]"],
                    "Item": {"pk": {"S": k}, "i": {"N": "0"}, "city": {"S": "Kobe"}},
                }
            },
            {
                "Put": {
                    "TableName": names["locations[]"],
                    "Item": {"pk": {"S": k}, "i": {"N": "1"}, "city": {"S": "Nara"}},
                }
            },
        ]

    def keys_of(k: str) -> dict[str, Any]:
        single = {"Keys": [{"pk": {"S": k}}]}
        return {
            names["parent"]: single,
            names["birth_details"]: single,
            names["location"]: single,
            names["location.geolocation"]: single,
            names["locations[]"]: {
                "Keys": [{"pk": {"S": k}, "i": {"N": str(i)}} for i in range(2)]
            },
        }

    times: dict[str, float] = {}
    ks = [f"p{i}" for i in range(n)]
    try:
        requests.phase = "create"
        start = time.perf_counter()
        for k in ks:
            c.transact_write_items(TransactItems=rows(k))  # type: ignore[arg-type]
        times["create"] = (time.perf_counter() - start) / n
        requests.phase = "read"
        start = time.perf_counter()
        for k in ks:
            c.batch_get_item(RequestItems=keys_of(k))
        times["read"] = (time.perf_counter() - start) / n
        requests.phase = "write_path"
        start = time.perf_counter()
        for k in ks:
            v = c.get_item(TableName=names["parent"], Key={"pk": {"S": k}}, ConsistentRead=True)[
                "Item"
            ]["v"]["N"]
            c.transact_write_items(
                TransactItems=[  # type: ignore[list-item]
                    {
                        "Update": {
                            "TableName": names["parent"],
                            "Key": {"pk": {"S": k}},
                            "UpdateExpression": "SET v = :n",
                            "ConditionExpression": "v = :v",
                            "ExpressionAttributeValues": {
                                ":v": {"N": v},
                                ":n": {"N": str(int(v) + 1)},
                            },
                        }
                    },
                    rows(k, "Tokyo")[2],
                ]
            )
        times["write_path"] = (time.perf_counter() - start) / n
        requests.phase = "delete"
        start = time.perf_counter()
        for k in ks:
            c.transact_write_items(
                TransactItems=[  # type: ignore[misc]
                    {"Delete": {"TableName": t, "Key": key}}
                    for t, spec in keys_of(k).items()
                    for key in spec["Keys"]
                ]
            )
        times["delete"] = (time.perf_counter() - start) / n
        requests.phase = "setup"
        batch = [f"q{i}" for i in range(100)]
        for k in batch:
            c.transact_write_items(TransactItems=rows(k))  # type: ignore[arg-type]
        requests.phase = "read_batch(100)"
        start = time.perf_counter()
        wanted = [(t, key) for k in batch for t, spec in keys_of(k).items() for key in spec["Keys"]]
        for s in range(0, len(wanted), 100):  # BatchGetItem takes 100 keys a request
            request: dict[str, Any] = {}
            for t, key in wanted[s : s + 100]:
                request.setdefault(t, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            while request:
                request = c.batch_get_item(RequestItems=request).get("UnprocessedKeys") or {}
        times["read_batch(100)"] = time.perf_counter() - start
    finally:
        requests.phase = "teardown"
        for name in names.values():
            c.delete_table(TableName=name)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("AWS_ENDPOINT_URL is not set: `source scripts/services` first (moto_server)")
    url = f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"
    ours, theirs = Requests(), Requests()
    t_ours = _persisty(url, args.n, ours)
    t_raw = _raw(args.n, theirs)
    t_sqlite = _persisty("sqlite://", args.n, None)
    print(f"n={args.n} items of four shards (moto_server; the machine was shared and loaded)\n")
    print(
        "| phase | persisty requests/op | raw boto3 requests/op | persisty ms/op | "
        "raw ms/op | persisty on SQLite ms/op |"
    )
    print("|---|---|---|---|---|---|")
    for phase in (
        "create",
        "read",
        "read (cold)",
        "write_path",
        "delete",
        "delete (cold)",
        "read_batch(100)",
    ):
        per = 1 if phase == "read_batch(100)" else args.n
        mine = phase.removesuffix(" (cold)")  # the raw code knows every key either way
        raw_req = f"{theirs.count[mine] / per:.1f}" if mine in t_raw else "-"
        raw_ms = f"{t_raw[mine] * 1000:.1f}" if mine in t_raw else "-"
        print(
            f"| {phase} | {ours.count[phase] / per:.1f} | {raw_req} | "
            f"{t_ours[phase] * 1000:.1f} | {raw_ms} | {t_sqlite[phase] * 1000:.2f} |"
        )


if __name__ == "__main__":
    main()

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
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
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


class Phases:
    """Times each phase (seconds per call of ``work``) and names it for the request count."""

    def __init__(self, requests: Requests | None) -> None:
        self.requests = requests
        self.times: dict[str, float] = {}

    def timed(self, phase: str, work: Callable[[Any], object], keys: Sequence[Any]) -> None:
        """``work(k)`` for each of ``keys``, its requests counted as ``phase``'s."""
        self.name(phase)
        start = time.perf_counter()
        for k in keys:
            work(k)
        self.times[phase] = (time.perf_counter() - start) / len(keys)
        self.name("setup")  # what follows (creates of the next phase's items) is not this one's

    def name(self, phase: str) -> None:
        if self.requests is not None:
            self.requests.phase = phase


def _persisty(url: str, n: int, requests: Requests | None) -> dict[str, float]:
    db = persisty.connect(url, namespace="b" + uuid.uuid4().hex[:8])
    phases = Phases(requests)
    try:
        if requests is not None:
            db.client.raw().meta.events.register("before-call.dynamodb", requests)  # type: ignore[attr-defined]
        people = sharded(db.store(ROWS), FOUR_WAYS)
        people.create(person("warm"))
        people.delete("warm")
        keys = [f"p{i}" for i in range(n)]
        batch = [f"q{i}" for i in range(100)]
        phases.timed("create", lambda k: people.create(person(k)), keys)
        phases.timed("read", people.read, keys)
        # a new layer each time: no pointers seen yet
        phases.timed("read (cold)", sharded(db.store(ROWS), FOUR_WAYS).read, keys)
        phases.timed("write_path", lambda k: people.write_path(k, "location.city", "Tokyo"), keys)
        for k in batch:
            people.create(person(k))
        phases.timed("read_batch(100)", lambda b: _all_found(people.read_batch(b)), [batch])
        phases.timed("delete", people.delete, keys)
        phases.timed("delete (cold)", sharded(db.store(ROWS), FOUR_WAYS).delete, batch[:n])
        return phases.times
    finally:
        phases.name("teardown")  # dropping the tables is no delete's
        db.drop()
        db.close()


def _all_found(got: Sequence[object | None]) -> None:
    assert all(g is not None for g in got)


def _raw(n: int, requests: Requests) -> dict[str, float]:
    c = boto3.client("dynamodb", region_name="us-east-1")
    c.meta.events.register("before-call.dynamodb", requests)
    prefix = "raw" + uuid.uuid4().hex[:8]
    names = {"parent": f"{prefix}.person", **{p: f"{prefix}.{t}" for p, t in FOUR_WAYS.items()}}
    for path, name in names.items():
        keys: list[Any] = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attrs: list[Any] = [{"AttributeName": "pk", "AttributeType": "S"}]
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

    def write_path(k: str) -> None:
        item = c.get_item(TableName=names["parent"], Key={"pk": {"S": k}}, ConsistentRead=True)
        v = item["Item"]["v"]["N"]
        update: Any = {
            "Update": {
                "TableName": names["parent"],
                "Key": {"pk": {"S": k}},
                "UpdateExpression": "SET v = :n",
                "ConditionExpression": "v = :v",
                "ExpressionAttributeValues": {":v": {"N": v}, ":n": {"N": str(int(v) + 1)}},
            }
        }
        c.transact_write_items(TransactItems=[update, rows(k, "Tokyo")[2]])  # type: ignore[list-item]

    def delete(k: str) -> None:
        c.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": t, "Key": key}}
                for t, spec in keys_of(k).items()
                for key in spec["Keys"]
            ]
        )

    def read_batch(batch: list[str]) -> None:
        wanted = [(t, key) for k in batch for t, spec in keys_of(k).items() for key in spec["Keys"]]
        for s in range(0, len(wanted), 100):  # BatchGetItem takes 100 keys a request
            request: dict[str, Any] = {}
            for t, key in wanted[s : s + 100]:
                request.setdefault(t, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
            while request:
                request = c.batch_get_item(RequestItems=request).get("UnprocessedKeys") or {}

    phases = Phases(requests)
    ks = [f"p{i}" for i in range(n)]
    batch = [f"q{i}" for i in range(100)]
    try:
        phases.timed("create", lambda k: c.transact_write_items(TransactItems=rows(k)), ks)  # type: ignore[arg-type]
        phases.timed("read", lambda k: c.batch_get_item(RequestItems=keys_of(k)), ks)
        phases.timed("write_path", write_path, ks)
        phases.timed("delete", delete, ks)
        for k in batch:
            c.transact_write_items(TransactItems=rows(k))  # type: ignore[arg-type]
        phases.timed("read_batch(100)", read_batch, [batch])
    finally:
        requests.phase = "teardown"
        for name in names.values():
            c.delete_table(TableName=name)
    return phases.times


PHASES = (
    "create",
    "read",
    "read (cold)",
    "write_path",
    "delete",
    "delete (cold)",
    "read_batch(100)",
)


def _ms(runs: list[dict[str, float]], phase: str, digits: int = 1) -> str:
    """The median of the runs in ms, with their range when there are several."""
    got = sorted(r[phase] * 1000 for r in runs)
    median = statistics.median(got)
    return f"{median:.{digits}f}" + (
        f" ({got[0]:.{digits}f}-{got[-1]:.{digits}f})" if len(got) > 1 else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="times: the median and range")
    args = parser.parse_args()
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("AWS_ENDPOINT_URL is not set: `source scripts/services` first (moto_server)")
    url = f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"
    ours: list[Requests] = []
    theirs: list[Requests] = []
    t_ours, t_raw, t_sqlite = [], [], []
    for _ in range(args.runs):
        ours.append(Requests())
        theirs.append(Requests())
        t_ours.append(_persisty(url, args.n, ours[-1]))
        t_raw.append(_raw(args.n, theirs[-1]))
        t_sqlite.append(_persisty("sqlite://", args.n, None))
    # request counts are exact: every run must issue the same
    assert all(r.count == ours[0].count for r in ours), [r.count for r in ours]
    assert all(r.count == theirs[0].count for r in theirs), [r.count for r in theirs]
    print(
        f"n={args.n} items of four shards, {args.runs} run(s) (moto_server; times: median "
        f"(range); load average {os.getloadavg()[0]:.1f})\n"
    )
    print(
        "| phase | persisty requests/op | raw boto3 requests/op | persisty ms/op | "
        "raw ms/op | persisty on SQLite ms/op |"
    )
    print("|---|---|---|---|---|---|")
    for phase in PHASES:
        per = 1 if phase == "read_batch(100)" else args.n
        mine = phase.removesuffix(" (cold)")  # the raw code knows every key either way
        has_raw = mine in t_raw[0]
        raw_req = f"{theirs[0].count[mine] / per:.1f}" if has_raw else "-"
        raw_ms = _ms(t_raw, mine) if has_raw else "-"
        print(
            f"| {phase} | {ours[0].count[phase] / per:.1f} | {raw_req} | "
            f"{_ms(t_ours, phase)} | {raw_ms} | {_ms(t_sqlite, phase, 2)} |"
        )


if __name__ == "__main__":
    main()

"""persisty's DynamoDB backend vs raw boto3 doing the same work on the same moto_server,
with the number of DynamoDB requests each made in every phase.

The raw contender is what hand-written boto3 code would do: one table keyed by ``id``, a GSI
(owner, score) for the search and the count, BatchWriteItem in 25s for the bulk load,
BatchGetItem in 100s, PutItem for updates, Query with Limit=20 for the search and
Select=COUNT for the count. persisty's bulk load uses ``edit_batch(atomic=False)`` (an
atomic batch on DynamoDB is one TransactWriteItems, at most 100 edits).

    source scripts/services    # starts moto_server, exports AWS_ENDPOINT_URL
    .venv/bin/python benchmarks/bench_dynamodb.py --n 500

moto answers a request in tens of milliseconds, so the default ``--n`` is small; the phase
sizes follow the standard workload (``min(10,000, 2n)`` reads, 1,000 searches …).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).parent))

from workload import (
    PHASES,
    BenchItem,
    Contender,
    PersistyContender,
    Result,
    median_table,
    run_one,
    table,
)

import persisty
from persisty.backends.dynamodb import DynamoDatabase
from persisty.store import Edit


def _url() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("AWS_ENDPOINT_URL is not set: `source scripts/services` first (moto_server)")
    return f"dynamodb://?region=us-east-1&endpoint_url={endpoint}"


class Requests:
    """Counts requests per phase through botocore's before-call event."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.count: Counter[str] = Counter()

    def __call__(self, **kwargs: Any) -> None:
        self.count[self.phase] += 1


class RawBoto3(Contender):
    """Hand-written boto3 (low-level client, attribute values built by hand)."""

    name = "raw boto3"
    baseline = True

    def __init__(self) -> None:
        self.requests = Requests()

    def setup(self) -> None:
        self.c = boto3.client("dynamodb", region_name="us-east-1")
        self.c.meta.events.register("before-call.dynamodb", self.requests)
        self.t = f"rawbench-{uuid.uuid4().hex[:8]}"
        self.c.create_table(
            TableName=self.t,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
                {"AttributeName": "score", "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "owner_score",
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "score", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        self.c.get_waiter("table_exists").wait(TableName=self.t)

    def teardown(self) -> None:
        self.requests.phase = "teardown"
        self.c.delete_table(TableName=self.t)

    @staticmethod
    def _item(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": {"S": r["id"]},
            "title": {"S": r["title"]},
            "owner": {"S": r["owner"]},
            "score": {"N": str(r["score"])},
            "created_at": {"S": r["created_at"].isoformat()},
            "tags": {"L": [{"S": t} for t in r["tags"]]},
        }

    @staticmethod
    def _row(i: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": i["id"]["S"],
            "title": i["title"]["S"],
            "owner": i["owner"]["S"],
            "score": int(i["score"]["N"]),
            "created_at": i["created_at"]["S"],
            "tags": [t["S"] for t in i["tags"]["L"]],
        }

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        self.requests.phase = "bulk_create"
        for s in range(0, len(rows), 25):
            pending: Any = {
                self.t: [{"PutRequest": {"Item": self._item(r)}} for r in rows[s : s + 25]]
            }
            while pending:
                pending = self.c.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    def read(self, key: str) -> Any:
        self.requests.phase = "read"
        item = self.c.get_item(TableName=self.t, Key={"id": {"S": key}}).get("Item")
        return None if item is None else self._row(item)

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        self.requests.phase = "read_batch"
        found: dict[str, Any] = {}
        pending: Any = {self.t: {"Keys": [{"id": {"S": k}} for k in dict.fromkeys(keys)]}}
        while pending:
            out = self.c.batch_get_item(RequestItems=pending)
            for i in out["Responses"].get(self.t, []):
                found[i["id"]["S"]] = self._row(i)
            pending = out.get("UnprocessedKeys")
        return [found.get(k) for k in keys]

    def update(self, row: dict[str, Any]) -> None:
        self.requests.phase = "update"
        self.c.put_item(
            TableName=self.t, Item=self._item(row), ConditionExpression="attribute_exists(id)"
        )

    def patch(self, change: dict[str, Any]) -> None:
        self.requests.phase = "patch"
        self.c.update_item(
            TableName=self.t,
            Key={"id": {"S": change["id"]}},
            UpdateExpression="SET #s = :s, #t = :t",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames={"#s": "score", "#t": "title"},
            ExpressionAttributeValues={
                ":s": {"N": str(change["score"])},
                ":t": {"S": change["title"]},
            },
        )

    def search(self, owner: str) -> list[Any]:
        self.requests.phase = "search"
        out = self.c.query(
            TableName=self.t,
            IndexName="owner_score",
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": {"S": owner}},
            ScanIndexForward=False,
            Limit=20,
        )
        return [self._row(i) for i in out["Items"]]

    def count(self, owner: str) -> int:
        self.requests.phase = "count"
        total, start = 0, None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            out = self.c.query(
                TableName=self.t,
                IndexName="owner_score",
                KeyConditionExpression="#o = :o",
                Select="COUNT",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": owner}},
                **kwargs,
            )
            total += out["Count"]
            start = out.get("LastEvaluatedKey")
            if not start:
                return total

    def delete(self, key: str) -> None:
        self.requests.phase = "delete"
        self.c.delete_item(TableName=self.t, Key={"id": {"S": key}})


class PersistyDynamo(PersistyContender):
    """persisty's sync DynamoDB store; bulk loads as non-atomic batches."""

    def __init__(self) -> None:
        self.requests = Requests()
        self.db: DynamoDatabase | None = None
        super().__init__("persisty dynamodb", self._open_store, self._close_db)

    def _open_store(self) -> Any:
        db = persisty.connect(_url(), namespace="bench" + uuid.uuid4().hex[:8])
        assert isinstance(db, DynamoDatabase)
        self.db = db
        db.client.raw().meta.events.register("before-call.dynamodb", self.requests)
        store = db.store(BenchItem)
        db.migrate()
        return store

    def _close_db(self) -> None:
        self.requests.phase = "teardown"
        if self.db is not None:
            self.db.drop()
            self.db.close()

    def bulk_create(self, rows: Sequence[dict[str, Any]]) -> None:
        self.requests.phase = "bulk_create"
        results = self.store.edit_batch([Edit.create(BenchItem(**r)) for r in rows], atomic=False)
        assert all(r.ok for r in results)

    def read(self, key: str) -> Any:
        self.requests.phase = "read"
        return super().read(key)

    def read_batch(self, keys: Sequence[str]) -> list[Any]:
        self.requests.phase = "read_batch"
        return super().read_batch(keys)

    def update(self, row: dict[str, Any]) -> None:
        self.requests.phase = "update"
        super().update(row)

    def patch(self, change: dict[str, Any]) -> None:
        self.requests.phase = "patch"
        super().patch(change)

    def search(self, owner: str) -> list[Any]:
        self.requests.phase = "search"
        return super().search(owner)

    def count(self, owner: str) -> int:
        self.requests.phase = "count"
        return super().count(owner)

    def delete(self, key: str) -> None:
        self.requests.phase = "delete"
        super().delete(key)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent runs; with several, a median table with the spread",
    )
    args = p.parse_args()
    _url()
    every: list[list[Result]] = []
    for i in range(args.runs):
        contenders: list[Any] = [RawBoto3(), PersistyDynamo()]
        results: list[Result] = []
        for c in contenders:
            print(f"run {i + 1}/{args.runs}: {c.name} (n={args.n:,}) …", flush=True)
            results.append(run_one(c, args.n, args.seed))
        every.append(results)
        print()
        print(table(results))
        print()
        print("| requests per phase | " + " | ".join(c.name for c in contenders) + " |")
        print("|---|" + "---:|" * len(contenders))
        for phase in PHASES:
            print(
                f"| {phase} | "
                + " | ".join(f"{c.requests.count[phase]:,}" for c in contenders)
                + " |"
            )
        print()
    if args.runs > 1:
        print(median_table(every))


if __name__ == "__main__":
    main()
